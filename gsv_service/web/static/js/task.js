// A task's page: header with the actions, tabs (steps, recordings, review, results), and the
// task's event stream that keeps every part live (reconnecting with Last-Event-ID).

import { api, eventStream } from "./api.js";
import { actionButton, clear, h, keepFocus, statusChip, throttle, toast } from "./dom.js";
import { cancelTask, deleteTask, isActive } from "./tasks.js";
import { Timeline } from "./timeline.js";
import { LogPanel } from "./logs.js";
import { LossPanel } from "./charts.js";
import { FilesPanel } from "./upload.js";
import { ReviewPanel } from "./review.js";
import { ResultsPanel } from "./results.js";
import { RunSettings } from "./runsettings.js";
import { stepTitle } from "./shared.js";

const TABS = [["steps", "Steps"], ["files", "Recordings"], ["review", "Review"], ["results", "Results"]];
const REVIEW_STEPS = new Set(["slice_audio", "denoise_audio", "asr_transcribe"]);
const RESULT_STEPS = new Set(["train_sovits", "train_gpt", "test_inference"]);
const TRAINING = new Set(["train_sovits", "train_gpt"]);

export class TaskView {
  constructor(taskId, shared) {
    this.taskId = taskId;
    this.shared = shared;
    this.base = `task/${encodeURIComponent(taskId)}`;
    this.task = null;
    this.runs = [];
    this.pipeline = null;
    this.tab = "steps";

    this.title = h("h1", { id: "task-title" }, "Task");
    this.status = h("span");
    this.live = h("span", { class: "pill", "aria-live": "polite" }, "connecting…");
    this.meta = h("p", { class: "muted small" });
    this.progress = h("progress", { max: 100, value: 0, "aria-labelledby": "task-title" });
    this.actions = h("div", { class: "row wrap actions" });
    this.notice = h("div", { class: "notice", role: "alert" });
    this.settings = new RunSettings(shared);
    this.tabLinks = {};
    const nav = h("nav", { class: "tabs", "aria-label": "Task sections" }, TABS.map(([key, label]) => {
      this.tabLinks[key] = h("a", { href: `#/task/${encodeURIComponent(taskId)}/${key}`, dataset: { tab: key } }, label);
      return this.tabLinks[key];
    }));

    this.timeline = new Timeline(this);
    this.logs = new LogPanel(this);
    this.losses = new LossPanel(this);
    this.files = new FilesPanel(this);
    this.review = new ReviewPanel(this);
    this.results = new ResultsPanel(this);
    this.panels = {
      steps: h("section", { class: "panel steps-panel", "aria-label": "Steps" },
        h("div", { class: "steps-col" }, h("h2", {}, "Steps"), this.settings.el, this.timeline.el),
        h("div", { class: "side-col" }, this.losses.el, this.logs.el)),
      files: this.files.el,
      review: this.review.el,
      results: this.results.el,
    };
    this.el = h("article", { class: "task-page", "aria-labelledby": "task-title" },
      h("p", { class: "crumbs" }, h("a", { href: "#/" }, "← Tasks")),
      h("header", { class: "task-head" },
        h("div", { class: "row spread wrap" }, h("div", { class: "row wrap" }, this.title, this.status), this.live),
        this.meta, this.progress, this.actions, this.notice),
      nav, Object.values(this.panels));
    this.refreshSoon = throttle(() => this.refresh(), 400);
    this.lossesSoon = throttle(() => this.losses.reload(), 1500);
  }

  start() {
    this.refresh();
    this.stream = eventStream(`${this.base}/events`, {
      onEvent: (type, ev) => this.onEvent(type, ev),
      onOpen: () => this.refreshSoon(),  // anything missed before the stream opened
      onStatus: (s) => this.setLive(s),
    });
    this.ticker = setInterval(() => this.timeline.tick(), 1000);
  }

  destroy() {
    if (this.stream) this.stream.close();
    clearInterval(this.ticker);
    this.refreshSoon.cancel();
    this.lossesSoon.cancel();
    this.logs.destroy();
    this.losses.destroy();
    this.files.destroy();
  }

  setLive(s) {
    this.live.className = `pill ${s}`;
    this.live.textContent = { live: "live", reconnecting: "reconnecting…", gone: "task deleted" }[s] || s;
  }

  showTab(tab) {
    if (!this.panels[tab]) tab = "steps";
    this.tab = tab;
    for (const [key, panel] of Object.entries(this.panels)) panel.hidden = key !== tab;
    for (const [key, link] of Object.entries(this.tabLinks)) {
      if (key === tab) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (tab === "files") this.files.load();
    if (tab === "review") this.review.load();
    if (tab === "results") this.results.load();
    if (tab === "steps") this.losses.resize();
  }

  onEvent(type, ev) {
    if (type === "progress") {
      this.timeline.progress(ev);
      if (TRAINING.has(ev.step)) this.lossesSoon();
      return;
    }
    if (type === "state") {
      this.refreshSoon();
      if (ev.status === "running") this.logs.runStarted(ev.run_id);
      if (TRAINING.has(ev.step)) this.lossesSoon();
      const done = ev.status === "completed" || ev.status === "failed" || ev.status === "cancelled";
      if (done && REVIEW_STEPS.has(ev.step)) this.review.invalidate();
      if (done && RESULT_STEPS.has(ev.step)) this.results.invalidate();
      if (done && ev.step === "convert_audio") this.files.invalidate();
    } else if (type === "pipeline") {
      this.refreshSoon();
      if (ev.status === "awaiting_review") this.review.invalidate();
    }
  }

  async refresh() {
    try {
      const [task, runs] = await Promise.all([api(this.base), api(`${this.base}/runs`)]);
      this.task = task;
      this.runs = runs;
      // only ask for the pipeline when the task has run one (no 404 to answer otherwise)
      this.pipeline = runs.some((r) => r.pipeline_id) ? await api(`${this.base}/pipeline`) : null;
    } catch (e) {
      if (e.status === 404) return this.gone();
      clear(this.notice, e.detail || String(e));
      return;
    }
    this.render();
  }

  gone() {
    if (this.stream) this.stream.close();
    this.setLive("gone");
    clear(this.el, h("p", { role: "alert" }, "This task does not exist (any more). ", h("a", { href: "#/" }, "Back to the tasks")));
  }

  render() {
    const t = this.task;
    const cfg = t.config || {};
    this.title.textContent = t.task_name;
    document.title = `${t.task_name} · GPT-SoVITS training`;
    const queue = t.queue_position ? `#${t.queue_position} in queue` : null;
    clear(this.status, statusChip(t.status, queue));
    this.el.dataset.status = t.status;
    this.progress.value = t.progress || 0;
    this.progress.title = `${Math.round(t.progress || 0)} %`;
    clear(this.meta, `${Math.round(t.progress || 0)} % · ${cfg.exp_name} · ${cfg.model_version} · ${cfg.language} · ` +
      `SoVITS ${cfg.epochs_s2} epochs, GPT ${cfg.epochs_s1} epochs, batch ${cfg.batch_size}` +
      (t.current_step ? ` · now: ${stepTitle(t.current_step)}` : ""));
    if (t.error_message && !isActive(t)) clear(this.notice, t.error_message);
    else if (!this.notice.dataset.sticky) clear(this.notice);
    this.renderActions();
    this.settings.setTask(t);
    this.timeline.render(t, this.runs, this.pipeline, isActive(t));
    this.logs.setRuns(this.runs, t.active_run_id);
    this.review.setTask(t, this.pipeline);
  }

  renderActions() {
    const t = this.task;
    const p = this.pipeline;
    const active = isActive(t);
    const awaiting = t.status === "awaiting_review" || (p && p.status === "awaiting_review");
    const resumable = p && (p.status === "failed" || p.status === "cancelled") && !active;
    keepFocus(this.actions, () => clear(this.actions,
      awaiting ? actionButton("Approve transcripts and continue", () => this.approve(), { class: "primary" }) : null,
      !active ? actionButton("Run all", () => this.runPipeline({}), { class: awaiting ? "secondary" : "primary" }) : null,
      resumable ? actionButton("Resume", () => this.runPipeline({ to_step: p.steps[p.steps.length - 1] }),
        { class: "secondary", title: `continue the ${p.status} pipeline up to ${stepTitle(p.steps[p.steps.length - 1])}` }) : null,
      active ? actionButton("Cancel", () => cancelTask(t, () => this.refreshSoon()), { class: "danger" }) : null,
      actionButton("Delete", () => deleteTask(t, () => { location.hash = "#/"; }), { class: "danger secondary" })));
  }

  showError(e) {
    const extra = e.body && e.body.to_step && e.body.to_step !== "none"
      ? actionButton(`Run to ${stepTitle(e.body.to_step)} instead`, () => this.runPipeline({ to_step: e.body.to_step }), { class: "secondary" })
      : e.body && e.body.run_first
        ? actionButton(`Run ${stepTitle(e.body.run_first)} first`, () => this.runPipeline({ to_step: e.body.run_first }), { class: "secondary" })
        : null;
    this.notice.dataset.sticky = "1";
    clear(this.notice, h("span", {}, e.detail || String(e)), " ", extra);
  }

  clearError() {
    delete this.notice.dataset.sticky;
    clear(this.notice);
  }

  async runPipeline(extra) {
    try {
      const body = { ...this.settings.pipelineBody(), ...extra };
      const res = await api(`${this.base}/run`, { method: "POST", body });
      this.clearError();
      toast(res.message, "ok");
    } catch (e) {
      this.showError(e);
    }
    this.refreshSoon();
  }

  async runStep(step) {
    try {
      const res = await api(`${this.base}/step/${step}`, { method: "POST", body: { params: this.settings.stepParams(step) } });
      this.clearError();
      toast(res.message, "ok");
    } catch (e) {
      this.showError(e);
    }
    this.refreshSoon();
  }

  async approve() {
    try {
      const res = await api(`${this.base}/transcripts/approve`, { method: "POST" });
      this.clearError();
      toast(res.message, "ok");
    } catch (e) {
      this.showError(e);
    }
    this.refreshSoon();
  }
}
