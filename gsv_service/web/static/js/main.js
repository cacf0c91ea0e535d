// The page's entry: shared data (steps, options), the hash router, and the engine badge.
// Routes: #/ (tasks), #/task/<id>[/<tab>] with tab = steps | files | review | results.

import { clear, h } from "./dom.js";
import { loadShared, shared } from "./shared.js";
import { TaskListView } from "./tasks.js";
import { TaskView } from "./task.js";

const main = document.getElementById("main");
let view = null;
let navigated = false;

function engineBadge(options) {
  const badge = document.getElementById("engine-badge");
  const banner = document.getElementById("banner");
  const dev = options.device.device === "cuda"
    ? `${options.device.gpus.length} GPU${options.device.gpus.length === 1 ? "" : "s"}` : "CPU";
  badge.hidden = false;
  badge.className = `badge ${options.engine.configured ? "ok" : "warn"}`;
  badge.textContent = options.engine.configured ? `engine ready · ${dev}` : `no engine · ${dev}`;
  badge.title = options.engine.root || "";
  if (!options.engine.configured) {
    banner.hidden = false;
    clear(banner, "No GPT-SoVITS engine is installed: the audio steps (convert, slice, denoise, " +
      "transcription with your own transcripts) work; training needs the engine — install it with ",
    h("code", {}, options.engine.install_command), ".");
  }
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "task" && parts[1]) return { name: "task", id: parts[1], tab: parts[2] || "steps" };
  return { name: "tasks" };
}

function route() {
  const r = parseRoute();
  if (r.name === "task" && view instanceof TaskView && view.taskId === r.id) {
    view.showTab(r.tab);
    return;
  }
  if (view) view.destroy();
  view = r.name === "task" ? new TaskView(r.id, shared) : new TaskListView(shared);
  clear(main, view.el);
  if (r.name === "task") view.showTab(r.tab);
  view.start();
  if (navigated) main.focus({ preventScroll: true });  // after a navigation, reading starts at the content
  navigated = true;
}

async function boot() {
  try {
    await loadShared();
    engineBadge(shared.options);
  } catch (e) {
    clear(main, h("p", { class: "error", role: "alert" },
      `The service did not answer: ${e.detail || e.message}. Reload the page to try again.`));
    return;
  }
  window.addEventListener("hashchange", route);
  route();
}

boot();
