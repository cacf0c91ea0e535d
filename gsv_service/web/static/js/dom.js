// Small DOM and formatting helpers shared by the views.

// h("button", {class: "x", onclick: fn}, "text", child) -> element. null/false children are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" && !(el instanceof HTMLOptionElement)) el.value = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export const newId = (prefix = "id") => `${prefix}-${++uid}`;

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

export function fmtNumber(v, digits = 3) {
  if (typeof v !== "number") return String(v ?? "");
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(2);
  return String(Number(v.toFixed(digits)));
}

export function elapsed(startIso, endIso) {
  if (!startIso) return null;
  return (endIso ? new Date(endIso) : new Date()) - new Date(startIso);
}

export function statusChip(status, extra) {
  const label = (status || "pending").replace(/_/g, " ");
  return h("span", { class: `chip s-${status || "pending"}` }, label, extra ? ` ${extra}` : null);
}

// A modal confirmation (<dialog>: focus is kept inside, Escape cancels). Resolves true/false.
export function confirmDialog(text, { title = "Are you sure?", ok = "Confirm" } = {}) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = ok;
  dlg.returnValue = "";
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
    dlg.querySelector("button.secondary").focus();
  });
}

export function toast(text, kind = "info", ms = 4000) {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast ${kind}` }, text);
  box.append(t);
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => t.remove(), kind === "error" ? ms * 2 : ms);
}

// Calls fn at most once per `ms`, and once more after the last call.
export function throttle(fn, ms) {
  let timer = null; let pending = false; let last = 0;
  const fire = () => { timer = null; last = Date.now(); pending = false; fn(); };
  const wrapped = () => {
    pending = true;
    if (timer) return;
    timer = setTimeout(fire, Math.max(0, ms - (Date.now() - last)));
  };
  wrapped.cancel = () => { clearTimeout(timer); timer = null; pending = false; };
  wrapped.pending = () => pending;
  return wrapped;
}

// A button that shows it is busy while its async action runs, and reports errors.
export function actionButton(label, action, attrs = {}) {
  const btn = h("button", { type: "button", ...attrs }, label);
  btn.addEventListener("click", async () => {
    if (btn.disabled) return;
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    try {
      await action(btn);
    } catch (e) {
      toast(e.detail || e.message || String(e), "error");
    } finally {
      btn.disabled = false;
      btn.removeAttribute("aria-busy");
    }
  });
  return btn;
}

const ROW_KEYS = ["taskId", "runId", "slice"];

// Re-renders `container` with `render()` and puts the keyboard focus back on the same control
// (same row, same kind, same text), so live updates do not throw a keyboard user out.
export function keepFocus(container, render) {
  const a = document.activeElement;
  let key = null;
  if (a && a !== document.body && container.contains(a)) {
    const row = ROW_KEYS.map((k) => [k, a.closest(`[data-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`)])
      .find(([, el]) => el);
    key = { row: row ? [row[0], row[1].dataset[row[0]]] : null, tag: a.tagName, text: a.textContent };
  }
  render();
  if (!key) return;
  let scope = container;
  if (key.row) {
    const attr = key.row[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    scope = container.querySelector(`[data-${attr}="${CSS.escape(key.row[1])}"]`);
  }
  const again = scope && [...scope.querySelectorAll(key.tag)].find((el) => el.textContent === key.text);
  if (again) again.focus({ preventScroll: true });
}
