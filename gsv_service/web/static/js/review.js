// Review: the dataset report (totals, warnings), every slice playable, its transcript editable in
// place (the API's answer beside the field), drop a slice, approve to continue a paused pipeline.

import { api, url } from "./api.js";
import { actionButton, clear, confirmDialog, fmtNumber, h, newId, toast } from "./dom.js";

const DONE = new Set(["completed", "stale"]);

export class ReviewPanel {
  constructor(view) {
    this.view = view;
    this.stale = true;
    this.task = null;
    this.banner = h("div", { class: "review-banner" });
    this.summary = h("div", { class: "summary-grid" });
    this.warnings = h("ul", { class: "warnings" });
    this.body = h("tbody");
    this.state = h("p", { class: "muted", "aria-live": "polite" });
    this.el = h("section", { class: "panel review-panel", "aria-labelledby": "review-h" },
      h("h2", { id: "review-h" }, "Review the dataset"),
      this.banner, this.state, this.summary, this.warnings,
      h("div", { class: "table-wrap" }, h("table", { class: "review-table", "aria-labelledby": "review-h" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Slice"), h("th", { scope: "col" }, "Listen"),
          h("th", { scope: "col" }, "Transcript"), h("th", { scope: "col" }, "Levels"),
          h("th", { scope: "col" }, "Warnings"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
        this.body)));
  }

  setTask(task, pipeline) {
    const was = this.awaiting;
    this.task = task;
    this.awaiting = task.status === "awaiting_review" || (pipeline && pipeline.status === "awaiting_review");
    this.renderBanner();
    if (was !== this.awaiting) this.invalidate();
  }

  renderBanner() {
    clear(this.banner, this.awaiting ? h("div", { class: "card attention", role: "status" },
      h("p", {}, h("strong", {}, "The pipeline is waiting for your review. "),
        "Listen to the slices, correct the transcripts, drop bad slices, then continue."),
      actionButton("Approve transcripts and continue", () => this.view.approve(), { class: "primary" })) : null);
  }

  invalidate() {
    this.stale = true;
    if (this.view.tab === "review") this.load();
  }

  async load() {
    if (!this.stale || !this.task) return;
    this.stale = false;
    const steps = this.task.steps || {};
    const sliced = DONE.has((steps.slice_audio || {}).status);
    const transcribed = DONE.has((steps.asr_transcribe || {}).status);
    if (!sliced) {
      clear(this.state, "No slices yet: upload recordings, then run ‘Convert and slice’ (or the pipeline).");
      clear(this.summary); clear(this.warnings); clear(this.body);
      return;
    }
    try {
      const [report, transcript] = await Promise.all([
        api(`${this.view.base}/dataset`),
        transcribed ? api(`${this.view.base}/transcripts`) : Promise.resolve(null),
      ]);
      this.render(report, transcript);
    } catch (e) {
      this.stale = true;
      clear(this.state, h("span", { class: "error" }, e.detail || String(e)));
    }
  }

  render(report, transcript) {
    const t = report.totals || {};
    this.source = report.source;
    this.transcript = transcript;
    clear(this.state, transcript ? `Transcript: ${transcript.path} (${transcript.count} lines)` :
      "Not transcribed yet: the transcripts appear here after the Transcribe step.");
    const cell = (label, value) => h("div", {}, h("div", { class: "small muted" }, label), h("strong", {}, value));
    clear(this.summary,
      cell("Slices", String(t.slices ?? 0)),
      cell("Audio", `${fmtNumber(t.minutes ?? 0, 2)} min`),
      cell("Speech", `${fmtNumber(t.speech_minutes ?? 0, 2)} min`),
      cell("Slice length", `${fmtNumber(t.min_seconds ?? 0, 1)}–${fmtNumber(t.max_seconds ?? 0, 1)} s`),
      cell("With transcript", String(t.with_transcript ?? 0)),
      cell("Slices with warnings", String(t.slices_with_warnings ?? 0)));
    clear(this.warnings, (report.warnings || []).map((w) => h("li", { class: "warning" }, w)),
      ((transcript && transcript.problems) || []).map((w) => h("li", { class: "warning" }, w)));
    const lines = Object.fromEntries(((transcript && transcript.lines) || []).map((l) => [l.slice, l]));
    clear(this.body, (report.slices || []).map((s) => this.row(s, lines[s.slice])));
  }

  row(s, line) {
    const src = url(`${this.view.base}/files/download/${encodeURIComponent(this.source || "sliced")}/${encodeURIComponent(s.slice)}`);
    const audio = h("audio", { controls: true, preload: "none", src, "aria-label": `Play ${s.slice}` });
    const errId = newId("tx-err");
    let editor = h("span", { class: "muted small" }, this.transcript ? "not in the transcript" : (s.text || "—"));
    if (line) {
      editor = h("textarea", { rows: 2, class: "transcript", value: line.text, "aria-label": `Transcript of ${s.slice}`,
        "aria-describedby": errId, dataset: { original: line.text } });
      editor.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); this.save(s.slice, editor, msg); }
        if (e.key === "Escape") { editor.value = editor.dataset.original; msg.textContent = ""; editor.removeAttribute("aria-invalid"); }
      });
      editor.addEventListener("change", () => this.save(s.slice, editor, msg));
    }
    const msg = h("div", { class: "field-msg small", id: errId, "aria-live": "polite" });
    return h("tr", { dataset: { slice: s.slice } },
      h("td", { "data-label": "Slice" }, h("div", { class: "mono small break" }, s.slice),
        h("div", { class: "small muted" }, `${fmtNumber(s.duration, 2)} s${s.language ? ` · ${s.language}` : ""}`)),
      h("td", { "data-label": "Listen" }, audio),
      h("td", { "data-label": "Transcript", class: "tx" }, editor, msg),
      h("td", { "data-label": "Levels", class: "small" },
        `peak ${fmtNumber(s.peak_db, 1)} dB · rms ${fmtNumber(s.rms_db, 1)} dB`,
        h("div", { class: "muted" }, `silence ${Math.round((s.silence_share || 0) * 100)} %` +
          (s.clipped_share ? ` · clipped ${fmtNumber(s.clipped_share * 100, 2)} %` : ""))),
      h("td", { "data-label": "Warnings" }, (s.warnings || []).length
        ? h("ul", { class: "warnings small" }, s.warnings.map((w) => h("li", { class: "warning" }, w)))
        : h("span", { class: "muted small" }, "none")),
      h("td", { class: "actions" }, line
        ? actionButton("Drop", () => this.drop(s.slice), { class: "small danger secondary", "aria-label": `Drop ${s.slice}` })
        : null));
  }

  async save(slice, editor, msg) {
    const text = editor.value.trim();
    if (text === editor.dataset.original) return;
    msg.className = "field-msg small";
    msg.textContent = "saving…";
    try {
      const res = await api(`${this.view.base}/transcripts`, { method: "PUT", body: { edits: [{ slice, text }] } });
      editor.dataset.original = text;
      editor.value = text;
      editor.removeAttribute("aria-invalid");
      msg.textContent = "saved";
      if (res.stale_steps && res.stale_steps.length) toast(`${res.message}; now stale: ${res.stale_steps.join(", ")}`, "info");
    } catch (e) {
      editor.setAttribute("aria-invalid", "true");
      msg.className = "field-msg small error";
      msg.textContent = e.detail || String(e);
    }
  }

  async drop(slice) {
    const ok = await confirmDialog(`Leave ${slice} out of the training data? Its line is removed from the transcript ` +
      "(the audio file stays).", { title: "Drop the slice?", ok: "Drop it" });
    if (!ok) return;
    const res = await api(`${this.view.base}/transcripts`, { method: "PUT", body: { edits: [{ slice, drop: true }] } });
    toast(res.message, "ok");
    this.invalidate();
  }
}
