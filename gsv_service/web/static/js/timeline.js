// The 11 steps as a timeline: state, duration, message, live progress (epoch, step, losses),
// "run to here" / "run only this step", and each step's runs with their messages and logs.

import { actionButton, clear, elapsed, fmtDuration, fmtNumber, fmtTime, h, statusChip } from "./dom.js";

const LIVE = new Set(["queued", "running"]);

function placeText(run, status, queuePosition) {
  const res = (run && run.resources) || {};
  const where = res.gpus ? `GPU ${res.gpus.join(", ")}` : res.cpu_slots ? "a CPU slot" : null;
  if (status === "running") return where ? `on ${where}` : "";
  if (status === "queued") {
    return `waiting${where ? ` for ${where}` : ""}${queuePosition ? ` (#${queuePosition} in queue)` : ""}`;
  }
  return "";
}

function metricsText(m) {
  if (!m) return "";
  const parts = [];
  if (m.epoch !== undefined && m.epoch !== null) parts.push(`epoch ${m.epoch}${m.epochs ? `/${m.epochs}` : ""}`);
  if (m.step !== undefined && m.step !== null) parts.push(`step ${m.step}${m.total_steps ? `/${m.total_steps}` : ""}`);
  for (const [k, v] of Object.entries(m.losses || {})) parts.push(`${k} ${fmtNumber(v)}`);
  return parts.join(" · ");
}

export class Timeline {
  constructor(view) {
    this.view = view;
    this.items = {};
    this.el = h("ol", { class: "timeline", "aria-label": "Training steps" });
    for (const s of view.shared.steps) {
      const item = {
        spec: s,
        chip: h("span", { class: "chip-slot" }),
        duration: h("span", { class: "duration small" }),
        bar: h("progress", { max: 1, value: 0, hidden: true, "aria-label": `${s.title} progress` }),
        place: h("p", { class: "step-place small muted" }),
        message: h("p", { class: "step-msg small" }),
        metrics: h("p", { class: "step-metrics small mono" }),
        runs: h("ul", { class: "runs" }),
        history: null,
        record: null,
      };
      item.history = h("details", { class: "history" }, h("summary", {}, "Runs"), item.runs);
      item.li = h("li", { class: "step", dataset: { step: s.name, status: "pending" } },
        h("div", { class: "step-head" },
          h("span", { class: "num", "aria-hidden": "true" }, String(s.order)),
          h("div", { class: "step-title" },
            h("strong", {}, s.title),
            h("span", { class: "muted small" }, ` ${s.name}${s.needs_engine ? " · engine" : ""}`)),
          item.chip, item.duration),
        item.bar, item.place, item.message, item.metrics,
        h("div", { class: "step-actions row wrap" },
          item.runTo = actionButton("Run to here", () => view.runPipeline({ to_step: s.name }), {
            class: "small secondary", "aria-label": `Run the pipeline up to ${s.title}` }),
          item.runOnly = actionButton("Run only this step", () => view.runStep(s.name), {
            class: "small secondary", "aria-label": `Run only ${s.title}` }),
          item.history));
      this.items[s.name] = item;
      this.el.append(item.li);
    }
  }

  render(task, runs, pipeline, busy) {
    const planned = new Set(pipeline && pipeline.status === "running" ? pipeline.steps : []);
    const byStep = {};
    for (const r of runs) (byStep[r.step] = byStep[r.step] || []).push(r);
    for (const [name, item] of Object.entries(this.items)) {
      const rec = (task.steps || {})[name] || { status: "pending" };
      item.record = rec;
      let status = rec.status || "pending";
      const skipped = name === "denoise_audio" && status === "pending" && !(task.config && task.config.denoise);
      const shown = skipped ? "skipped" : (status === "pending" && planned.has(name) ? "waiting" : status);
      item.li.dataset.status = status;
      item.li.className = `step s-${shown}`;
      clear(item.chip, statusChip(shown));
      item.bar.hidden = !LIVE.has(status);
      item.bar.value = rec.progress || 0;
      const text = rec.error_message || (skipped ? "off for this task (its denoise setting)" : rec.message) || "";
      item.message.textContent = text + (rec.reason && rec.reason !== "cancelled_by_user" && rec.error_message ? ` (${rec.reason})` : "");
      item.message.classList.toggle("error", !!rec.error_message);
      const active = runs.find((r) => r.id === rec.run_id);
      item.place.textContent = placeText(active, status, status === "queued" ? task.queue_position : null);
      item.runTo.disabled = busy;
      item.runOnly.disabled = busy;
      item.runTo.title = item.runOnly.title = busy ? "the task is busy: wait for it, or cancel it" : "";
      item.metrics.textContent = LIVE.has(status) || (active && active.metrics) ? metricsText(active && active.metrics) : "";
      this.renderRuns(item, byStep[name] || []);
    }
    this.tick();
  }

  renderRuns(item, runs) {
    const sig = runs.map((r) => `${r.id}:${r.status}:${r.finished_at}:${r.message}:${r.error_message}`).join("|");
    if (sig === item.runsSig) return;  // unchanged: keep the list (and the focus in it)
    item.runsSig = sig;
    item.history.hidden = !runs.length;
    item.history.querySelector("summary").textContent = `Runs (${runs.length})`;
    clear(item.runs, runs.slice().reverse().map((r) => h("li", { dataset: { runId: r.id } },
      statusChip(r.status), " ",
      h("span", { class: "small" }, fmtTime(r.started_at || r.created_at)),
      r.started_at && r.finished_at ? h("span", { class: "small muted" }, ` · took ${fmtDuration(elapsed(r.started_at, r.finished_at))}`) : null,
      h("div", { class: `small ${r.error_message ? "error" : ""}` }, r.error_message || r.message || ""),
      h("button", { type: "button", class: "link small", onclick: () => this.view.logs.show(r.id, true) }, "Show log"))));
  }

  // live progress of a running step, straight from its progress events
  progress(ev) {
    const item = this.items[ev.step];
    if (!item) return;
    item.bar.hidden = false;
    item.bar.value = ev.progress || 0;
    if (ev.message) item.message.textContent = ev.message;
    if (ev.metrics) item.metrics.textContent = metricsText(ev.metrics);
  }

  tick() {
    for (const item of Object.values(this.items)) {
      const rec = item.record;
      if (!rec || !rec.started_at) { item.duration.textContent = ""; continue; }
      const running = LIVE.has(rec.status);
      item.duration.textContent = fmtDuration(elapsed(rec.started_at, running ? null : rec.finished_at));
    }
  }
}
