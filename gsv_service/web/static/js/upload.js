// Recordings: drop files or a folder (or choose them), each uploaded with its own progress bar;
// the files the task holds, by folder.

import { api, uploadFile } from "./api.js";
import { clear, fmtBytes, h, newId, toast } from "./dom.js";

const PARALLEL = 2;
const SHOWN = ["input_audio", "input_transcripts", "converted_wav", "sliced"];
const TITLES = { input_audio: "Uploaded recordings", input_transcripts: "Uploaded transcripts",
  converted_wav: "Converted (32 kHz WAV)", sliced: "Slices" };

// Every file under a dropped folder (webkitGetAsEntry), hidden files left out.
async function entriesToFiles(entry, out) {
  if (entry.name.startsWith(".")) return;
  if (entry.isFile) {
    out.push(await new Promise((res, rej) => entry.file(res, rej)));
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) await entriesToFiles(e, out);
    }
  }
}

export class FilesPanel {
  constructor(view) {
    this.view = view;
    this.queue = [];
    this.active = 0;
    this.stale = true;
    const fileId = newId("pick");
    const dirId = newId("pickdir");
    this.pickFiles = h("input", { type: "file", id: fileId, multiple: true, class: "sr-only",
      onchange: (e) => { this.add([...e.target.files]); e.target.value = ""; } });
    this.pickDir = h("input", { type: "file", id: dirId, multiple: true, webkitdirectory: true, class: "sr-only",
      onchange: (e) => { this.add([...e.target.files].filter((f) => !f.name.startsWith("."))); e.target.value = ""; } });
    this.zone = h("div", { class: "dropzone", dataset: { testid: "dropzone" } },
      h("p", {}, h("strong", {}, "Drop recordings or a folder here")),
      h("p", { class: "small muted" }, "Audio or video with speech (wav, mp3, m4a, flac, ogg, mp4, …), and transcripts " +
        "if you have them (.list, or one .txt per slice)."),
      h("div", { class: "row wrap center" },
        h("label", { for: fileId, class: "button", tabindex: "0", role: "button", onkeydown: (e) => this.keyPick(e, this.pickFiles) }, "Choose files"),
        h("label", { for: dirId, class: "button secondary", tabindex: "0", role: "button", onkeydown: (e) => this.keyPick(e, this.pickDir) }, "Choose a folder")),
      this.pickFiles, this.pickDir);
    for (const ev of ["dragenter", "dragover"]) {
      this.zone.addEventListener(ev, (e) => { e.preventDefault(); this.zone.classList.add("over"); });
    }
    this.zone.addEventListener("dragleave", () => this.zone.classList.remove("over"));
    this.zone.addEventListener("drop", (e) => this.drop(e));
    this.list = h("ul", { class: "uploads", "aria-label": "Uploads" });
    this.folders = h("div", { class: "folders" });
    this.el = h("section", { class: "panel files-panel", "aria-labelledby": "files-h" },
      h("h2", { id: "files-h" }, "Recordings"),
      this.zone, this.list,
      h("div", { class: "row wrap" },
        h("button", { type: "button", class: "primary", onclick: () => this.view.runPipeline({ to_step: "slice_audio" }) }, "Convert and slice"),
        h("span", { class: "small muted" }, "runs the first steps; then listen to the slices on the Review tab")),
      this.folders);
  }

  keyPick(e, input) {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  }

  destroy() {
    for (const item of this.queue) if (item.ctrl) item.ctrl.abort();
  }

  invalidate() {
    this.stale = true;
    if (this.view.tab === "files") this.load();
  }

  async drop(e) {
    e.preventDefault();
    this.zone.classList.remove("over");
    const items = [...(e.dataTransfer.items || [])];
    const files = [];
    const entries = items.map((it) => (it.webkitGetAsEntry ? it.webkitGetAsEntry() : null));
    if (entries.some(Boolean)) {
      for (const entry of entries) if (entry) await entriesToFiles(entry, files);
    } else {
      files.push(...e.dataTransfer.files);
    }
    this.add(files);
  }

  add(files) {
    for (const file of files) {
      const bar = h("progress", { max: 1, value: 0, "aria-label": `upload of ${file.name}` });
      const state = h("span", { class: "small" }, "waiting");
      const li = h("li", { dataset: { file: file.name, state: "waiting" } },
        h("span", { class: "name" }, file.name), h("span", { class: "small muted" }, fmtBytes(file.size)), bar, state);
      this.list.prepend(li);
      this.queue.push({ file, li, bar, state, ctrl: new AbortController() });
    }
    this.pump();
  }

  pump() {
    while (this.active < PARALLEL) {
      const item = this.queue.find((q) => q.li.dataset.state === "waiting");
      if (!item) return;
      this.send(item);
    }
  }

  async send(item) {
    this.active++;
    item.li.dataset.state = "uploading";
    item.state.textContent = "uploading";
    try {
      const res = await uploadFile(`${this.view.base}/files/upload`, item.file, {
        signal: item.ctrl.signal,
        onProgress: (done, total) => { item.bar.value = done / total; item.state.textContent = `${Math.round((100 * done) / total)} %`; },
      });
      item.bar.value = 1;
      item.li.dataset.state = "done";
      const f = res.files[0];
      item.state.textContent = `uploaded to ${f.folder}${f.replaced ? " (replaced)" : ""}`;
    } catch (e) {
      item.li.dataset.state = "error";
      item.state.className = "small error";
      item.state.textContent = e.detail || String(e);
    } finally {
      this.active--;
      this.pump();
      if (!this.active && !this.queue.some((q) => q.li.dataset.state === "waiting")) {
        const failed = this.queue.filter((q) => q.li.dataset.state === "error").length;
        if (failed) toast(`${failed} upload(s) failed: see the list`, "error");
        this.stale = true;
        this.load();
      }
    }
  }

  async load() {
    if (!this.stale) return;
    this.stale = false;
    try {
      const res = await api(`${this.view.base}/files`);
      clear(this.folders, SHOWN.map((name) => {
        const files = res.folders[name] || [];
        if (!files.length) return null;
        const total = files.reduce((s, f) => s + f.size, 0);
        return h("details", { class: "folder", open: name.startsWith("input_"), dataset: { folder: name } },
          h("summary", {}, `${TITLES[name]} — ${files.length} file${files.length === 1 ? "" : "s"}, ${fmtBytes(total)}`),
          h("ul", { class: "small" }, files.slice(0, 500).map((f) => h("li", {},
            h("a", { href: `/api/v1/${this.view.base}/files/download/${f.path.split("/").map(encodeURIComponent).join("/")}`, download: f.name }, f.name),
            ` · ${fmtBytes(f.size)}`))));
      }));
      if (!this.folders.children.length) this.folders.append(h("p", { class: "muted" }, "No recordings yet."));
    } catch (e) {
      this.stale = true;
      clear(this.folders, h("p", { class: "error" }, e.detail || String(e)));
    }
  }
}
