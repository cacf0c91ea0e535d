// Loss curves of the task's SoVITS and GPT training runs (GET .../metrics), one chart per kind with
// a choice of run; reloaded while a run trains, keeping the zoom.

import { api } from "./api.js";
import { clear, fmtTime, h, newId } from "./dom.js";
import { LossChart } from "./chart.js";

class KindChart {
  constructor(kind, title) {
    this.kind = kind;
    this.runs = [];
    this.runId = null;
    this.chosen = false;  // the person picked a run: keep it
    const id = newId(kind);
    this.select = h("select", { id, onchange: () => { this.chosen = true; this.pick(this.select.value); } });
    this.chart = new LossChart(`${title} losses`);
    this.empty = h("p", { class: "muted small" }, `No ${title} training yet.`);
    this.el = h("div", { class: "kind-chart", dataset: { kind } },
      h("div", { class: "row spread wrap" }, h("h3", {}, title),
        this.picker = h("div", { class: "row" }, h("label", { for: id, class: "small" }, "Run"), this.select)),
      this.empty, this.chart.el);
  }

  setRuns(runs) {
    this.runs = runs;
    this.empty.hidden = runs.length > 0;
    this.chart.el.hidden = runs.length === 0;
    this.picker.hidden = runs.length === 0;
    const latest = runs.length ? runs[runs.length - 1].run_id : null;
    const want = this.chosen && runs.some((r) => r.run_id === this.runId) ? this.runId : latest;
    clear(this.select, runs.slice().reverse().map((r, i) => h("option", { value: r.run_id, selected: r.run_id === want },
      `#${runs.length - i} · ${r.status} · ${fmtTime(r.started_at)}`)));
    this.pick(want);
  }

  pick(runId) {
    this.runId = runId;
    const run = this.runs.find((r) => r.run_id === runId);
    this.chart.el.dataset.run = runId || "";
    this.chart.el.dataset.status = run ? run.status : "";
    this.chart.setPoints(run ? run.points : []);
  }
}

export class LossPanel {
  constructor(view) {
    this.view = view;
    this.sovits = new KindChart("sovits", "SoVITS");
    this.gpt = new KindChart("gpt", "GPT");
    this.el = h("section", { class: "card loss-panel", "aria-labelledby": "losses-h" },
      h("h2", { id: "losses-h" }, "Loss curves"),
      h("p", { class: "muted small" }, "Hover or use the arrow keys for values; wheel, drag or +/− to zoom."),
      this.sovits.el, this.gpt.el);
    this.loaded = false;
    this.reload();
  }

  async reload() {
    try {
      const m = await api(`${this.view.base}/metrics`);
      this.sovits.setRuns(m.sovits || []);
      this.gpt.setRuns(m.gpt || []);
      this.loaded = true;
    } catch (e) {
      if (e.status !== 404) this.el.dataset.error = e.detail || String(e);
    }
  }

  resize() {
    this.sovits.chart.draw();
    this.gpt.chart.draw();
  }

  destroy() {
    this.sovits.chart.destroy();
    this.gpt.chart.destroy();
  }
}
