// A run's log: the tail, then following it live while the run is active (GET .../logs?follow=true).
// Carriage returns (progress bars) overwrite the line, as in a terminal.

import { api, followText } from "./api.js";
import { clear, fmtTime, h, newId } from "./dom.js";
import { stepTitle } from "./shared.js";

const MAX_LINES = 4000;
const ACTIVE = new Set(["queued", "running"]);

export class LogPanel {
  constructor(view) {
    this.view = view;
    this.runs = [];
    this.runId = null;
    this.lines = [];
    this.partial = "";
    this.ctrl = null;
    this.pinned = false;  // the person picked a run: do not jump to new ones
    const selId = newId("log-run");
    this.select = h("select", { id: selId, onchange: () => this.show(this.select.value, true) });
    this.follow = h("input", { type: "checkbox", checked: true, onchange: () => { this.pinned = !this.follow.checked; } });
    this.state = h("span", { class: "muted small", "aria-live": "polite" });
    this.pre = h("pre", { class: "log", tabindex: "0", "aria-label": "Log of the selected run" });
    this.el = h("section", { class: "card log-panel", "aria-labelledby": `${selId}-h` },
      h("div", { class: "row spread wrap" },
        h("h2", { id: `${selId}-h` }, "Log"),
        h("div", { class: "row wrap" },
          h("label", { for: selId, class: "sr-only" }, "Run"), this.select,
          h("label", { class: "small" }, this.follow, " follow the newest run"))),
      this.state, this.pre);
  }

  destroy() {
    if (this.ctrl) this.ctrl.abort();
  }

  setRuns(runs, activeRunId) {
    this.runs = runs;
    const keep = this.runId;
    clear(this.select, runs.length ? null : h("option", { value: "" }, "no runs yet"),
      runs.slice().reverse().map((r) => h("option", { value: r.id, selected: r.id === keep },
        `${stepTitle(r.step)} · ${r.status} · ${fmtTime(r.started_at || r.created_at)}`)));
    const wanted = (!this.pinned && (activeRunId || (runs.length && runs[runs.length - 1].id))) || keep;
    if (wanted && wanted !== this.runId) this.show(wanted, false);
    else if (this.runId) this.select.value = this.runId;
  }

  runStarted(runId) {
    if (!this.pinned && runId !== this.runId) this.show(runId, false);
  }

  async show(runId, byUser) {
    if (byUser) { this.pinned = true; this.follow.checked = false; }
    if (this.ctrl) this.ctrl.abort();
    this.runId = runId;
    this.select.value = runId;
    this.lines = [];
    this.partial = "";
    this.pre.textContent = "";
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    const run = this.runs.find((r) => r.id === runId);
    const live = !run || ACTIVE.has(run.status);
    const query = { run_id: runId, tail: 65536 };
    try {
      if (live) {
        this.state.textContent = "following…";
        await followText(`${this.view.base}/logs`, { ...query, follow: true }, { onText: (t) => this.append(t), signal: ctrl.signal });
        if (this.ctrl === ctrl) this.state.textContent = "the run has ended";
      } else {
        const res = await api(`${this.view.base}/logs`, { query, signal: ctrl.signal });
        this.state.textContent = res.truncated ? "the last 64 KB of the log" : "";
        this.append(res.logs);
      }
      this.append("", true);
    } catch (e) {
      if (e.name !== "AbortError" && this.ctrl === ctrl) this.state.textContent = e.detail || String(e);
    }
  }

  append(text, final = false) {
    const stick = this.pre.scrollHeight - this.pre.scrollTop - this.pre.clientHeight < 40;
    const parts = (this.partial + text).split("\n");
    let rest = parts.pop();
    if (final && rest) { parts.push(rest); rest = ""; }
    this.partial = rest;
    for (const line of parts) {
      const segs = line.split("\r").filter((s) => s.length);
      this.lines.push(segs.length ? segs[segs.length - 1] : "");
    }
    if (this.lines.length > MAX_LINES) this.lines.splice(0, this.lines.length - MAX_LINES);
    const tail = this.partial.split("\r").filter((s) => s.length).pop() || "";
    this.pre.textContent = this.lines.join("\n") + (tail ? `\n${tail}` : "");
    if (stick) this.pre.scrollTop = this.pre.scrollHeight;
  }
}
