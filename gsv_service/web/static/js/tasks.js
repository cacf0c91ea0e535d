// The task list (live through the service-wide event stream) and the "new task" form.

import { api, eventStream } from "./api.js";
import { actionButton, clear, confirmDialog, fmtTime, h, keepFocus, statusChip, throttle, toast } from "./dom.js";
import { CreateTaskForm } from "./create.js";
import { stepTitle } from "./shared.js";

const PAGE = 50;
const ACTIVE = new Set(["queued", "running", "awaiting_review"]);

export function isActive(task) {
  return ACTIVE.has(task.status) || !!task.active_run_id || !!task.active_pipeline_id;
}

export class TaskListView {
  constructor(shared) {
    this.shared = shared;
    this.limit = PAGE;
    this.tasks = [];
    this.total = 0;
    this.live = h("span", { class: "pill", "aria-live": "polite" }, "connecting…");
    this.summary = h("p", { class: "muted summary" });
    this.body = h("tbody");
    this.more = h("button", { type: "button", class: "secondary", hidden: true,
      onclick: () => { this.limit += PAGE; this.load(); } }, "Show more");
    this.form = new CreateTaskForm(shared, (task) => {
      toast(`Task "${task.task_name}" created: add recordings next`, "ok");
      location.hash = `#/task/${encodeURIComponent(task.task_id)}/files`;
    });
    this.createBox = h("details", { class: "card create", id: "new-task" },
      h("summary", {}, h("span", { class: "h2" }, "New task")), this.form.el);
    this.el = h("section", { class: "tasks-page", "aria-labelledby": "tasks-title" },
      h("div", { class: "row spread" }, h("h1", { id: "tasks-title" }, "Tasks"), this.live),
      this.createBox,
      this.summary,
      h("div", { class: "table-wrap" },
        h("table", { class: "tasks-table", "aria-labelledby": "tasks-title" },
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Task"), h("th", { scope: "col" }, "Status"),
            h("th", { scope: "col" }, "Progress"), h("th", { scope: "col" }, "Created"),
            h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
          this.body)),
      this.more);
    this.reload = throttle(() => this.load(), 700);
  }

  start() {
    this.load();
    this.stream = eventStream("events", {
      query: { types: "state,pipeline,progress" },
      onEvent: () => this.reload(),
      onOpen: () => this.reload(),
      onStatus: (s) => { this.live.textContent = s === "live" ? "live" : "reconnecting…"; this.live.className = `pill ${s}`; },
    });
    // tasks created or deleted by other clients make no events: look again now and then
    this.timer = setInterval(() => { if (!document.hidden) this.reload(); }, 15000);
  }

  destroy() {
    if (this.stream) this.stream.close();
    clearInterval(this.timer);
    this.reload.cancel();
  }

  async load() {
    try {
      const res = await api("tasks", { query: { limit: this.limit, order: "desc" }, raw: true });
      this.tasks = await res.json();
      this.total = Number(res.headers.get("X-Total-Count") || this.tasks.length);
      await this.queuePositions();
      this.render();
    } catch (e) {
      clear(this.summary, h("span", { class: "error", role: "alert" }, e.detail || String(e)));
    }
  }

  async queuePositions() {
    const queued = this.tasks.filter((t) => t.status === "queued" && t.active_run_id).slice(0, 20);
    await Promise.all(queued.map(async (t) => {
      try { t.queue_position = (await api(`task/${t.task_id}`)).queue_position; } catch { /* gone */ }
    }));
  }

  render() {
    if (!this.tasks.length && !this.createBox.dataset.touched) this.createBox.open = true;
    this.createBox.dataset.touched = "1";
    const running = this.tasks.filter((t) => t.status === "running").length;
    const queued = this.tasks.filter((t) => t.status === "queued").length;
    const review = this.tasks.filter((t) => t.status === "awaiting_review").length;
    clear(this.summary, `${this.total} task${this.total === 1 ? "" : "s"}`,
      running ? ` · ${running} running` : "", queued ? ` · ${queued} queued` : "",
      review ? ` · ${review} awaiting review` : "");
    keepFocus(this.body, () => {
      if (!this.tasks.length) {
        clear(this.body, h("tr", {}, h("td", { colspan: 5, class: "muted" },
          "No tasks yet. Create one above, then add recordings.")));
      } else {
        clear(this.body, this.tasks.map((t) => this.row(t)));
      }
    });
    this.more.hidden = this.tasks.length >= this.total;
  }

  row(t) {
    const link = `#/task/${encodeURIComponent(t.task_id)}`;
    const queue = t.status === "queued" && t.queue_position ? `#${t.queue_position} in queue` : null;
    const pct = Math.round(t.progress || 0);
    const cfg = t.config || {};
    return h("tr", { dataset: { taskId: t.task_id, status: t.status } },
      h("td", { "data-label": "Task" },
        h("a", { href: link, class: "task-name" }, t.task_name),
        h("div", { class: "muted small" }, [cfg.exp_name, cfg.model_version, cfg.language].filter(Boolean).join(" · "))),
      h("td", { "data-label": "Status" }, statusChip(t.status), queue ? h("div", { class: "small" }, queue) : null,
        t.error_message ? h("div", { class: "small error clamp", title: t.error_message }, t.error_message) : null),
      h("td", { "data-label": "Progress" },
        h("progress", { max: 100, value: pct, "aria-label": `${t.task_name}: ${pct} %` }),
        h("span", { class: "small" }, ` ${pct} %`),
        t.current_step ? h("div", { class: "muted small" }, stepTitle(t.current_step)) : null),
      h("td", { "data-label": "Created", class: "small" }, fmtTime(t.created_at)),
      h("td", { class: "actions" },
        h("a", { href: link, class: "button secondary" }, "Open"),
        isActive(t) ? actionButton("Cancel", () => cancelTask(t, () => this.load()), { class: "secondary" }) : null,
        actionButton("Delete", () => deleteTask(t, () => this.load()), { class: "danger" })));
  }
}

export async function cancelTask(t, after) {
  const ok = await confirmDialog(`Stop what task "${t.task_name}" is running? The running step is ` +
    "stopped and recorded as cancelled; run it again to continue.", { title: "Cancel the run?", ok: "Cancel the run" });
  if (!ok) return;
  const res = await api(`task/${t.task_id}/cancel`, { method: "POST" });
  toast(res.message, res.cancelled ? "ok" : "info");
  if (after) after();
}

export async function deleteTask(t, after) {
  const ok = await confirmDialog(`Delete task "${t.task_name}" with its recordings, slices, transcripts ` +
    "and trained weights? This cannot be undone.", { title: "Delete the task?", ok: "Delete" });
  if (!ok) return;
  const res = await api(`task/${t.task_id}`, { method: "DELETE" });
  toast(res.message, "ok");
  if (after) after();
}
