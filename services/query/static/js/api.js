// Requests to the query API (this page's origin) and the ingest API (INGEST_PUBLIC_URL,
// from sales/config.json). Every request carries `Authorization: Bearer <key>`; the key is
// asked once, kept in sessionStorage, and asked again whenever an API answers 401.

import { $ } from "./dom.js";

const KEY_STORAGE = "partsemble.apiKey";
let ingestBase = null;

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    let text;
    if (Array.isArray(detail)) text = detail.map((d) => (d.field ? `${d.field}: ${d.problem}` : d.problem)).join("; ");
    else if (detail && typeof detail === "object" && "parameter" in detail) text = `${detail.parameter}: ${detail.problem}`;
    else if (typeof detail === "string") text = detail;
    else if (detail) text = JSON.stringify(detail);
    super(`${(body && body.error) || `HTTP ${status}`}${text ? ` — ${text}` : ""}`);
    this.status = status;
    this.error = body && body.error;
    this.detail = detail;
  }

  /** The 422 problems by field name ({"lines.0.quantity": "…"}). */
  get fieldProblems() {
    const problems = {};
    if (Array.isArray(this.detail)) for (const d of this.detail) if (d.field) problems[d.field] = d.problem;
    return problems;
  }
}

/** Raised (and announced to the page) when the tenant's plan has no sales tracking. */
export const GATED = "sales_tracking_unavailable";

let pendingKey = null;

/** Show the key form; resolves with the key the user enters. Concurrent callers share one form. */
export function askForKey(message) {
  const dialog = $("#key-dialog");
  const error = $("#key-error");
  error.hidden = !message;
  error.textContent = message || "";
  if (pendingKey) return pendingKey;
  pendingKey = new Promise((resolve) => {
    const form = $("#key-form");
    const input = $("#key-input");
    input.value = "";
    const onSubmit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      form.removeEventListener("submit", onSubmit);
      sessionStorage.setItem(KEY_STORAGE, key);
      dialog.close();
      pendingKey = null;
      resolve(key);
    };
    form.addEventListener("submit", onSubmit);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
  return pendingKey;
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

async function currentKey(message) {
  return sessionStorage.getItem(KEY_STORAGE) || askForKey(message);
}

export async function loadConfig() {
  const response = await fetch(new URL("sales/config.json", document.baseURI), { headers: { Accept: "application/json" } });
  if (!response.ok) throw new ApiError(response.status, null);
  const config = await response.json();
  ingestBase = String(config.ingest_url || "").replace(/\/+$/, "");
  return config;
}

export const ingestUrl = (path) => `${ingestBase}/${path.replace(/^\//, "")}`;

/** The URL of a query API path with its non-empty parameters. */
export function queryUrl(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  return url;
}

/** One request with the key; asks again on 401. Answers the Response (ok or not). */
async function send(url, init = {}) {
  let message;
  for (;;) {
    const key = await currentKey(message);
    const response = await fetch(url, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${key}` } });
    if (response.status !== 401) return response;
    forgetKey();
    message = "That API key was not accepted. Please enter a valid key.";
    await askForKey(message);
  }
}

async function json(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, body);
    if (response.status === 403 && error.error === GATED) {
      document.dispatchEvent(new CustomEvent("partsemble:gated", { detail: error }));
    }
    throw error;
  }
  return body;
}

/** GET a query API path (relative to /sales: "api/v1/…"). */
export async function query(path, params = {}) {
  return json(await send(queryUrl(path, params), { headers: { Accept: "application/json" } }));
}

/** A request to the ingest API (another origin: CORS). */
export async function ingest(method, path, body, { credentials } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: credentials || "omit" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return json(await send(ingestUrl(path), init));
}

/** Download a query API list as CSV (the link's URL, fetched with the key, saved as a file). */
export async function downloadCsv(url, filename) {
  const response = await send(url, { headers: { Accept: "text/csv" } });
  if (!response.ok) await json(response);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

/** Poll the event status until every event is applied (or one is dead-lettered). */
export async function waitForEvents(eventIds, { timeoutMs = 30_000, intervalMs = 250 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (const id of eventIds) {
    for (;;) {
      const status = await query(`api/v1/events/${encodeURIComponent(id)}`);
      if (status.status === "applied") break;
      if (status.status === "dead_lettered") throw new Error(`the change could not be costed: ${status.error}`);
      if (Date.now() > deadline) throw new Error("the change is taking longer than usual to be costed; reload later");
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

/** Show (or clear) the page's error banner. */
export function showError(error) {
  const banner = $("#error");
  if (!error || error.error === GATED) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  banner.textContent = error instanceof ApiError ? `The request failed: ${error.message}` : `Error: ${error.message}`;
  banner.hidden = false;
}
