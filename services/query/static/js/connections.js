// QuickBooks connections (ingest API): connect (Intuit's consent, then back here), each
// company's state, last successful sync and last error in plain words, Sync now with a
// summary when it finishes, reconnect and disconnect.

import { ApiError, ingest, showError } from "./api.js";
import { $, badge, el, fact } from "./dom.js";
import { daysAgo, isoDate, qty, timestamp } from "./format.js";

const STATES = {
  active: ["Connected", "posted"],
  connected: ["Connected", "posted"],
  syncing: ["Syncing…", "kind"],
  needs_reconnect: ["Needs reconnecting", "shortage"],
  disconnected: ["Disconnected", "voided-plain"],
};
const ENTITIES = { Invoice: "Invoice", SalesReceipt: "Sales receipt", CreditMemo: "Credit memo" };
const REFRESH_MS = 1500; // while a company syncs, its state is read again this often
const summaries = new Map(); // realm → the last Sync now's summary node
let request = 0;
let refresh = null;

/** The error as a bookkeeper can act on it: the ingest API gives it in plain words already
 * (kept as is); a bare code or exception name is put into words here. */
export function errorInWords(error) {
  if (!error) return null;
  const text = String(error);
  if (/^QuickBooks |^The last sync /.test(text)) return text;
  if (/invalid_grant|reconnect|revoked|refresh token|unauthori[sz]ed|401/i.test(text)) {
    return "QuickBooks no longer accepts Partsemble's access (it was revoked or expired). Reconnect to resume syncing.";
  }
  if (/429|throttl|rate limit|too many/i.test(text)) return "QuickBooks asked us to slow down. The sync will try again by itself shortly.";
  if (/timeout|timed out|unavailable|5\d\d|connection|reset|refused/i.test(text)) {
    return "QuickBooks could not be reached. The sync will try again by itself.";
  }
  return `The last sync failed: ${text}`;
}

const stateOf = (c) => c.state || (c.status === "connected" ? "active" : c.status);

export async function show() {
  const since = $("#connect-since");
  since.min = daysAgo(30);
  since.max = isoDate(new Date());
  if (!since.value) since.value = daysAgo(30);
  await load();
}

async function load() {
  const mine = ++request;
  const list = $("#connections");
  list.setAttribute("aria-busy", "true");
  try {
    const body = await ingest("GET", "api/v1/connections/quickbooks");
    if (mine !== request) return;
    showError(null);
    const items = body.items || [];
    list.replaceChildren(...items.map(card));
    $("#connections-empty").hidden = items.length > 0;
    // A first import (or a sync) is running: show when it is done without a reload.
    clearTimeout(refresh);
    if (items.some((c) => stateOf(c) === "syncing")) {
      refresh = setTimeout(() => { if (!$("#view-connections").hidden) load(); }, REFRESH_MS);
    }
  } catch (error) {
    if (mine === request) showError(error);
  } finally {
    if (mine === request) list.removeAttribute("aria-busy");
  }
}

function card(c) {
  const state = stateOf(c);
  const [label, kind] = STATES[state] || [state, "flag"];
  const buttons = [];
  if (state === "active" || state === "syncing") {
    buttons.push(el("button", { text: "Sync now", cls: "sync", attrs: { type: "button", disabled: state === "syncing" } }));
  }
  if (state === "needs_reconnect" || state === "disconnected") {
    buttons.push(el("button", { text: "Reconnect", cls: "reconnect", attrs: { type: "button" } }));
  }
  if (state !== "disconnected") {
    buttons.push(el("button", { text: "Disconnect", cls: "secondary disconnect", attrs: { type: "button" } }));
  }
  const node = el("li", { cls: `connection state-${state}`, data: { realm: c.realm_id, state } }, [
    el("div", { cls: "connection-head" }, [
      el("h3", { text: `Company ${c.realm_id}` }), badge(label, kind),
    ]),
    el("dl", { cls: "facts" }, [
      fact("Last successful sync", c.last_synced_at ? timestamp(c.last_synced_at) : "not yet", { col: "last_synced_at" }),
      fact("Last error", errorInWords(c.last_error) || "none", { col: "last_error" }),
    ]),
    el("div", { cls: "connection-actions" }, buttons),
    summaries.get(c.realm_id) || el("div", { cls: "sync-summary", attrs: { "aria-live": "polite" }, data: { realm: c.realm_id } }),
  ]);
  node.querySelector(".sync")?.addEventListener("click", () => syncNow(c.realm_id, node));
  node.querySelector(".reconnect")?.addEventListener("click", () => connect(c.realm_id));
  node.querySelector(".disconnect")?.addEventListener("click", () => disconnect(c.realm_id));
  return node;
}

async function syncNow(realm, node) {
  const button = node.querySelector(".sync");
  const box = node.querySelector(".sync-summary");
  summaries.set(realm, box);
  button.disabled = true;
  box.replaceChildren(el("p", { cls: "muted", text: "Syncing with QuickBooks…" }));
  const path = `api/v1/connections/quickbooks/${encodeURIComponent(realm)}`;
  try {
    const started = await ingest("POST", `${path}/sync`);
    if (!started.sync_id) {
      box.replaceChildren(el("p", { text: "Sync requested." }));
      return;
    }
    const runPath = `${path}/syncs/${encodeURIComponent(started.sync_id)}`;
    let run;
    for (;;) {
      run = await ingest("GET", runPath);
      if (run.status !== "running") break;
      await sleep(500);
    }
    // The sales it read are costed shortly after: until then they have no id to link to.
    for (let tries = 0; tries < 60 && uncosted(run); tries += 1) {
      box.replaceChildren(...summary(run));
      await sleep(500);
      run = await ingest("GET", runPath);
    }
    box.replaceChildren(...summary(run));
    box.dataset.status = run.status;
  } catch (error) {
    box.replaceChildren(el("p", { cls: "error", text: error instanceof ApiError && error.status === 409
      ? "This company cannot sync now: reconnect it first." : `The sync could not run: ${error.message}` }));
  } finally {
    button.disabled = false;
    load();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const SALE_GROUPS = ["created", "updated", "voided", "deleted"];
const uncosted = (run) => SALE_GROUPS.some((name) => (run[name] || []).some((ref) => ref.id === null));

/** A sale the sync read: a link to its detail once costed (the query API's id), its
 * QuickBooks name meanwhile. */
function saleRef(ref) {
  const text = `${ENTITIES[ref.entity] || ref.entity} ${ref.qbo_id}`;
  if (ref.id === null || ref.id === undefined) {
    return el("span", { cls: "pending", text: `${text} (being costed)`, data: { qbo: ref.qbo_id } });
  }
  return el("a", { text, attrs: { href: `?sale=${encodeURIComponent(ref.id)}` }, data: { qbo: ref.qbo_id, id: ref.id } });
}

function summary(run) {
  const sales = (name, refs) => {
    const list = Array.isArray(refs) ? refs : [];
    return el("div", { cls: "sync-group", data: { group: name } }, [
      el("dt", { text: `${name[0].toUpperCase()}${name.slice(1)}` }),
      el("dd", {}, [el("span", { cls: "count", text: String(list.length) }), ...list.map(saleRef)]),
    ]);
  };
  const count = (value) => (Array.isArray(value) ? value.length : qty(value ?? 0));
  return [
    el("p", { cls: run.status === "failed" ? "error" : "ok", text: run.status === "failed"
      ? `The sync failed${run.error ? `: ${errorInWords(run.error)}` : "."}` : "Sync finished." }),
    el("dl", { cls: "sync-counts" }, [
      ...SALE_GROUPS.map((name) => sales(name, run[name])),
      el("div", { data: { group: "skipped" } }, [el("dt", { text: "Skipped" }), el("dd", { cls: "count", text: String(count(run.skipped)) })]),
      el("div", { data: { group: "failed" } }, [el("dt", { text: "Failed" }), el("dd", { cls: "count", text: String(count(run.failed)) })]),
    ]),
  ];
}

/** To Intuit's consent page. A new connection starts its first import at the date chosen; a
 * reconnection (``realm``) carries on from where the connection left off (no date). */
async function connect(realm) {
  try {
    const params = new URLSearchParams(realm ? {} : { since: $("#connect-since").value || daysAgo(30) });
    const answer = await ingest("GET", `oauth/quickbooks/connect?${params}`, undefined, { credentials: "include" });
    window.location.assign(answer.authorize_url);
  } catch (error) {
    showError(error);
  }
}

async function disconnect(realm) {
  if (!window.confirm(`Disconnect QuickBooks company ${realm}? Sales already imported stay; new ones stop arriving.`)) return;
  try {
    await ingest("POST", `api/v1/connections/quickbooks/${encodeURIComponent(realm)}/disconnect`);
  } catch (error) {
    showError(error);
  }
  summaries.delete(realm);
  load();
}

export function wire() {
  $("#connect-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const since = $("#connect-since");
    if (since.value < since.min || since.value > since.max) {
      showError(new Error(`Choose a date from ${since.min} to ${since.max}: QuickBooks keeps 30 days of changes.`));
      return;
    }
    connect(null);
  });
}
