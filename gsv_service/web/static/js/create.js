// The "new task" form. Every choice, default and limit comes from the service: the training
// settings per model version from GET /options (the web UI's defaults for this machine, the
// limits the service accepts), the other settings from the TaskConfig schema in /openapi.json.

import { api } from "./api.js";
import { clear, h, newId } from "./dom.js";
import { taskConfigSchema } from "./shared.js";

const LABELS = {
  batch_size: "Batch size",
  epochs_s2: "SoVITS epochs",
  save_every_epoch_s2: "Save SoVITS weights every … epochs",
  text_low_lr_rate: "SoVITS text learning-rate factor",
  epochs_s1: "GPT epochs",
  save_every_epoch_s1: "Save GPT weights every … epochs",
  lora_rank: "LoRA rank",
};
const MAIN = new Set(["exp_name", "language", "model_version"]);

function field(label, input, hint, key) {
  const errId = newId("err");
  const hintId = hint ? newId("hint") : null;
  input.id = input.id || newId("f");
  input.setAttribute("aria-describedby", [hintId, errId].filter(Boolean).join(" "));
  return h("div", { class: "field", dataset: { field: key } },
    h("label", { for: input.id }, label),
    input,
    hint ? h("div", { class: "hint", id: hintId }, hint) : null,
    h("div", { class: "field-error", id: errId, "aria-live": "polite" }));
}

export class CreateTaskForm {
  constructor(shared, onCreated) {
    this.shared = shared;
    this.onCreated = onCreated;
    this.numbers = {};  // per model version, rebuilt when it changes
    this.extras = {};   // from the schema
    this.el = h("form", { class: "create-form", novalidate: false, onsubmit: (e) => this.submit(e) });
    this.build();
  }

  async build() {
    const o = this.shared.options;
    let schema = { properties: {} };
    try { schema = await taskConfigSchema(); } catch { /* the form works without the extras */ }
    this.schema = schema;
    const props = schema.properties || {};
    this.name = h("input", { type: "text", name: "task_name", required: true, maxlength: 200,
      autocomplete: "off", placeholder: "e.g. Alice, audiobook reading" });
    this.exp = h("input", { type: "text", name: "exp_name", required: true, maxlength: 64,
      value: (props.exp_name && props.exp_name.default) || "" });
    this.version = h("select", { name: "model_version", onchange: () => this.versionChanged() },
      o.versions.map((v) => h("option", { value: v.version, selected: v.version === o.default_version },
        v.version + (v.default ? " (default)" : "") + (v.pretrained_installed === false ? " — pretrained models missing" : ""))));
    this.language = h("select", { name: "language", required: true });
    this.training = h("fieldset", { class: "grid" }, h("legend", {}, "Training"));
    this.extrasBox = h("div", { class: "grid" });
    this.formError = h("p", { class: "error", role: "alert" });
    this.submitBtn = h("button", { type: "submit" }, "Create task");
    clear(this.el,
      h("div", { class: "grid" },
        field("Task name", this.name, null, "task_name"),
        field("Experiment name", this.exp, props.exp_name && props.exp_name.description, "exp_name"),
        field("Model version", this.version, null, "model_version"),
        field("Language of the recordings", this.language, "what the speaker says; it picks the text front end", "language")),
      this.training,
      h("details", { class: "advanced" }, h("summary", {}, "More settings"), this.extrasBox),
      this.formError,
      h("div", { class: "row" }, this.submitBtn));
    this.versionChanged();
    this.buildExtras(props);
  }

  current() {
    return this.shared.options.versions.find((v) => v.version === this.version.value);
  }

  versionChanged() {
    const v = this.current();
    const o = this.shared.options;
    const keep = this.language.value;
    const byCode = Object.fromEntries(o.languages.map((l) => [l.code, l]));
    clear(this.language, h("option", { value: "" }, "choose…"),
      v.languages.map((code) => h("option", { value: code, selected: code === keep },
        `${byCode[code] ? byCode[code].name : code} (${code})`)));
    this.numberFields(v);
  }

  numberFields(v) {
    const device = this.shared.options.device;
    const seen = new Set();
    const rows = [];
    this.numbers = {};
    for (const opt of [v.sovits.batch_size, v.sovits.epochs, v.sovits.save_every_epoch, v.sovits.text_low_lr_rate,
      v.gpt.batch_size, v.gpt.epochs, v.gpt.save_every_epoch]) {
      if (!opt || seen.has(opt.field)) continue;
      seen.add(opt.field);
      const int = Number.isInteger(opt.step);
      const input = h("input", { type: "number", name: opt.field, required: true, value: String(opt.default),
        min: String(opt.minimum), max: String(opt.maximum), step: int ? String(opt.step) : "any", inputmode: int ? "numeric" : "decimal" });
      let hint = `web UI: ${opt.webui_minimum}–${opt.webui_maximum}, default ${opt.default}; accepted ` +
        `${opt.exclusive_minimum ? ">" : ""}${opt.minimum}–${opt.maximum}`;
      if (opt.field === "batch_size") {
        hint += `. ${device.batch_size_basis}. GPT's web UI default: ${v.gpt.batch_size.default}`;
      }
      this.numbers[opt.field] = input;
      rows.push(field(LABELS[opt.field] || opt.field, input, hint, opt.field));
    }
    if (v.sovits.lora_rank) {
      const c = v.sovits.lora_rank;
      const sel = h("select", { name: c.field }, c.choices.map((x) => h("option", { value: String(x), selected: x === c.default }, String(x))));
      this.numbers[c.field] = sel;
      rows.push(field(LABELS[c.field] || c.field, sel, null, c.field));
    }
    clear(this.training, h("legend", {}, `Training (${v.version})`), rows);
  }

  buildExtras(props) {
    const rows = [];
    for (const [key, p] of Object.entries(props)) {
      if (MAIN.has(key) || LABELS[key]) continue;
      const types = p.anyOf ? p.anyOf.map((x) => x.type) : [p.type];
      const label = key.replace(/_/g, " ").replace(/^if /, "");
      let input;
      if (types.length === 1 && types[0] === "boolean") {
        input = h("input", { type: "checkbox", name: key, checked: !!p.default });
        rows.push(h("div", { class: "field check", dataset: { field: key } },
          h("label", {}, input, ` ${label}`), p.description ? h("div", { class: "hint" }, p.description) : null,
          h("div", { class: "field-error", "aria-live": "polite" })));
      } else if (types.includes("boolean")) {
        input = h("select", { name: key }, h("option", { value: "" }, "automatic"),
          h("option", { value: "true" }, "on"), h("option", { value: "false" }, "off"));
        rows.push(field(label, input, p.description, key));
      } else if (types.includes("string")) {
        input = h("input", { type: "text", name: key, value: typeof p.default === "string" ? p.default : "",
          maxlength: p.maxLength || (p.anyOf && p.anyOf[0].maxLength) || 2000 });
        let hint = p.description || "";
        if (key === "gpu_id") {
          const gpus = this.shared.options.device.gpus;
          hint += gpus.length ? ` (here: ${gpus.map((g) => `${g.id} ${g.name}`).join(", ")})` : " (no GPU here)";
        }
        rows.push(field(label, input, hint, key));
      } else {
        continue;
      }
      this.extras[key] = input;
    }
    clear(this.extrasBox, rows);
  }

  values() {
    const config = { exp_name: this.exp.value.trim(), model_version: this.version.value, language: this.language.value };
    for (const [key, input] of Object.entries(this.numbers)) {
      if (input.value !== "") config[key] = Number(input.value);
    }
    for (const [key, input] of Object.entries(this.extras)) {
      if (input.type === "checkbox") config[key] = input.checked;
      else if (input.tagName === "SELECT") { if (input.value) config[key] = input.value === "true"; }
      else if (input.value.trim() !== "") config[key] = input.value.trim();
    }
    return { task_name: this.name.value.trim(), config };
  }

  showErrors(e) {
    for (const el of this.el.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of this.el.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    let placed = false;
    for (const err of (e.body && e.body.errors) || []) {
      const key = String(err.loc[err.loc.length - 1]);
      const box = this.el.querySelector(`.field[data-field="${CSS.escape(key)}"]`);
      if (!box) continue;
      box.querySelector(".field-error").textContent = err.msg;
      const input = box.querySelector("input, select");
      if (input) input.setAttribute("aria-invalid", "true");
      placed = true;
    }
    this.formError.textContent = placed ? "" : (e.detail || String(e));
  }

  async submit(ev) {
    ev.preventDefault();
    if (!this.el.reportValidity()) return;
    this.submitBtn.disabled = true;
    try {
      const task = await api("task/create", { method: "POST", body: this.values() });
      this.showErrors({ body: {}, detail: "" });
      this.name.value = "";
      this.onCreated(task);
    } catch (e) {
      this.showErrors(e);
    } finally {
      this.submitBtn.disabled = false;
    }
  }
}
