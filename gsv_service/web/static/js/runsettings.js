// What a run asks for besides the task's config: the review pause, the ASR and denoise methods
// (from GET /options, with what is available on this service now) and the test sentence.

import { h, newId } from "./dom.js";

function methodSelect(methods, name) {
  return h("select", { name }, methods.map((m) => h("option", {
    value: m.method, selected: m.default, disabled: !m.available,
    title: m.why_not || m.description,
  }, m.method + (m.available ? "" : " (not available)"))));
}

function labelled(label, input, hint) {
  input.id = newId("rs");
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input,
    hint ? h("div", { class: "hint" }, hint) : null);
}

export class RunSettings {
  constructor(shared) {
    const o = shared.options;
    this.review = h("input", { type: "checkbox", name: "review", checked: true });
    this.asr = methodSelect(o.asr_methods, "asr_method");
    this.denoise = methodSelect(o.denoise_methods, "denoise_method");
    this.text = h("input", { type: "text", name: "target_text", maxlength: 2000,
      placeholder: "default: a test sentence in the task's language" });
    const asrHelp = o.asr_methods.map((m) => `${m.method}: ${m.why_not || m.description}`).join(" · ");
    this.denoiseField = labelled("Denoise method", this.denoise,
      o.denoise_methods.map((m) => `${m.method}: ${m.why_not || m.description}`).join(" · "));
    this.el = h("details", { class: "card run-settings" },
      h("summary", {}, "Run settings"),
      h("div", { class: "grid" },
        h("div", { class: "field check" }, h("label", {}, this.review, " Pause after transcription so I can review the transcripts"),
          h("div", { class: "hint" }, "the pipeline waits in ‘awaiting review’; approve on the Review tab")),
        labelled("Transcription (ASR) method", this.asr, asrHelp),
        this.denoiseField,
        labelled("Test sentence (test inference)", this.text)));
  }

  setTask(task) {
    this.denoiseField.hidden = !(task.config && task.config.denoise);
  }

  stepParams(step) {
    if (step === "asr_transcribe" && this.asr.value !== "auto") return { method: this.asr.value };
    if (step === "denoise_audio" && this.denoise.value !== "auto") return { method: this.denoise.value };
    if (step === "test_inference" && this.text.value.trim()) return { target_text: this.text.value.trim() };
    return {};
  }

  pipelineBody() {
    const steps_params = {};
    for (const step of ["asr_transcribe", "denoise_audio", "test_inference"]) {
      const p = this.stepParams(step);
      if (Object.keys(p).length) steps_params[step] = p;
    }
    return { stop_after_asr_for_review: this.review.checked, steps_params };
  }
}
