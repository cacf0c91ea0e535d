// Results: the trained weights with download links, and the test-inference audio to listen to.

import { api, url } from "./api.js";
import { clear, fmtBytes, fmtTime, h } from "./dom.js";

function modelsTable(title, items, latest) {
  if (!items.length) return h("p", { class: "muted" }, `No ${title} weights yet.`);
  return h("div", { class: "table-wrap" }, h("table", { class: "models-table", "aria-label": `${title} weights` },
    h("caption", {}, `${title} weights`),
    h("thead", {}, h("tr", {}, ["File", "Epoch", "Step", "Size", "Saved"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, items.map((m) => h("tr", { dataset: { model: m.name } },
      h("td", { "data-label": "File" }, h("a", { href: m.download_url, download: m.name }, m.name),
        m.name === latest ? h("span", { class: "chip s-completed" }, "latest") : null),
      h("td", { "data-label": "Epoch" }, String(m.epoch ?? "")),
      h("td", { "data-label": "Step" }, String(m.step ?? "")),
      h("td", { "data-label": "Size" }, fmtBytes(m.size)),
      h("td", { "data-label": "Saved", class: "small" }, fmtTime(m.modified)))))));
}

export class ResultsPanel {
  constructor(view) {
    this.view = view;
    this.stale = true;
    this.models = h("div");
    this.audio = h("div");
    this.el = h("section", { class: "panel results-panel", "aria-labelledby": "results-h" },
      h("h2", { id: "results-h" }, "Results"),
      h("section", { "aria-labelledby": "weights-h" }, h("h3", { id: "weights-h" }, "Trained weights"), this.models),
      h("section", { "aria-labelledby": "infer-h" }, h("h3", { id: "infer-h" }, "Test inference"), this.audio));
  }

  invalidate() {
    this.stale = true;
    if (this.view.tab === "results") this.load();
  }

  async load() {
    if (!this.stale) return;
    this.stale = false;
    try {
      const [models, files] = await Promise.all([
        api(`${this.view.base}/models`), api(`${this.view.base}/files`, { query: { folder: "output" } })]);
      const latest = models.latest || {};
      clear(this.models, modelsTable("SoVITS", models.sovits || [], latest.sovits),
        modelsTable("GPT", models.gpt || [], latest.gpt));
      const wavs = (files.folders.output || []).filter((f) => /\.(wav|mp3|ogg|flac)$/i.test(f.name));
      clear(this.audio, wavs.length ? h("ul", { class: "outputs" }, wavs.map((f) => {
        const src = url(`${this.view.base}/files/download/${f.path.split("/").map(encodeURIComponent).join("/")}`);
        return h("li", { dataset: { output: f.name } },
          h("div", {}, h("strong", {}, f.name), h("span", { class: "small muted" }, ` · ${fmtBytes(f.size)} · ${fmtTime(f.modified)}`)),
          h("audio", { controls: true, preload: "metadata", src, "aria-label": `Play ${f.name}` }),
          h("a", { href: src, download: f.name, class: "small" }, "Download"));
      })) : h("p", { class: "muted" }, "No test audio yet: the Test inference step writes it after training."));
    } catch (e) {
      this.stale = true;
      clear(this.models, h("p", { class: "error" }, e.detail || String(e)));
    }
  }
}
