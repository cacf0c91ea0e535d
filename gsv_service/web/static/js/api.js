// Every request the page makes goes through this module: JSON calls, uploads with progress, and
// event streams (Server-Sent Events read with fetch, so they carry the same headers).

export const API = "/api/v1";

// The one place request headers come from. The API key is not here: signIn() hands it to the
// service, which keeps it in an HttpOnly cookie (so <audio src> and download links work too).
export function authHeaders() {
  return {};
}

// A 401 means the service has API keys: ask for one once (however many requests got the 401),
// POST it to /session (which sets the cookie), and say whether the caller may retry.
let signingIn = null;
export function signIn() {
  if (signingIn) return signingIn;
  signingIn = (async () => {
    const key = window.prompt("This service needs an API key (its admin creates one with: "
      + "python -m gsv_service keys create --name NAME --scope run). Key:");
    if (!key) return false;
    const res = await fetch(url("session"), { method: "POST", cache: "no-store",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ key: key.trim() }) });
    if (!res.ok) window.alert((await ApiError.from(res)).detail);
    return res.ok;
  })().finally(() => { signingIn = null; });
  return signingIn;
}

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body || {};
  }

  static async from(res) {
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    const detail = (body && typeof body.detail === "string" && body.detail)
      || `${res.status} ${res.statusText || "error"}`;
    return new ApiError(res.status, detail, body);
  }
}

export function url(path, query) {
  const u = new URL(path.startsWith("/") ? path : `${API}/${path}`, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, String(v));
  }
  return u.pathname + u.search;
}

// JSON in, JSON out; an error answer becomes an ApiError with the API's `detail`.
export async function api(path, { method = "GET", body, query, signal, raw = false, retried = false } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers, signal, cache: "no-store" };
  // Also without a body: a change made with the cookie must say JSON (another site's form cannot).
  if (method !== "GET") headers["Content-Type"] = "application/json";
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(url(path, query), init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "the service does not answer; is it running?");
  }
  if (res.status === 401 && !retried && await signIn()) {
    return api(path, { method, body, query, signal, raw, retried: true });
  }
  if (!res.ok) throw await ApiError.from(res);
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

// One file as multipart field `file`, with upload progress; signs in and retries once on a 401.
export async function uploadFile(path, file, opts = {}) {
  try {
    return await sendFile(path, file, opts);
  } catch (e) {
    if (e.status === 401 && await signIn()) return sendFile(path, file, opts);
    throw e;
  }
}

// fetch cannot report upload progress; XHR can.
function sendFile(path, file, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url(path));
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, (body && body.detail) || `${xhr.status} upload failed`, body));
    };
    xhr.onerror = () => reject(new ApiError(0, "the upload was cut off (network error)"));
    xhr.onabort = () => reject(new ApiError(0, "upload cancelled"));
    if (signal) signal.addEventListener("abort", () => xhr.abort());
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Follows a Server-Sent Events stream; reconnects after a drop with Last-Event-ID set to the
// last event seen, so nothing is missed or repeated. onStatus gets "live" | "reconnecting".
export function eventStream(path, { onEvent, onOpen, onStatus, query = {}, latest = true } = {}) {
  let lastId = null;
  let stopped = false;
  let ctrl = null;
  let delay = 500;

  function dispatch(block) {
    let id = null; let type = "message"; const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (id !== null) lastId = id;
    if (!data.length) return;
    let payload;
    try { payload = JSON.parse(data.join("\n")); } catch { return; }
    onEvent && onEvent(type, payload);
  }

  async function run() {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const headers = { Accept: "text/event-stream", ...authHeaders() };
        const q = { ...query };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        else if (latest) q.latest = "true";
        const res = await fetch(url(path, q), { headers, signal: ctrl.signal, cache: "no-store" });
        if (!res.ok) {
          const err = await ApiError.from(res);
          if (err.status === 404) { onStatus && onStatus("gone"); return; }
          if (err.status === 401) await signIn();
          throw err;
        }
        delay = 500;
        onStatus && onStatus("live");
        onOpen && onOpen(lastId);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = (buf + value).replace(/\r\n/g, "\n");
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            dispatch(buf.slice(0, cut));
            buf = buf.slice(cut + 2);
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      if (stopped) return;
      onStatus && onStatus("reconnecting");
      await sleep(delay);
      delay = Math.min(delay * 2, 8000);
    }
  }

  run();
  return {
    close() { stopped = true; if (ctrl) ctrl.abort(); },
    get lastId() { return lastId; },
  };
}

// A plain-text stream (a run's log with follow=true): onText gets each decoded chunk.
export async function followText(path, query, { onText, signal }) {
  const get = () => fetch(url(path, query), { headers: { ...authHeaders() }, signal, cache: "no-store" });
  let res = await get();
  if (res.status === 401 && await signIn()) res = await get();
  if (!res.ok) throw await ApiError.from(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onText(value);
  }
}
