// Sales-channel connections of every provider (ingest API: GET /api/v1/connections):
// connect (the provider's consent, then back here), each company's or organisation's state,
// last successful sync and last error in plain words, Sync now with a summary when it
// finishes, reconnect and disconnect.

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
const PROVIDERS = {
  quickbooks: { label: "QuickBooks", noun: "company", maxDays: 30 },
  xero: { label: "Xero", noun: "organisation", maxDays: 30 },
};
const providerOf = (name) => PROVIDERS[name] || { label: name, noun: "account", maxDays: 30 };
const ENTITIES = {
  Invoice: "Invoice", SalesReceipt: "Sales receipt", CreditMemo: "Credit memo",
  CreditNote: "Credit note", BankTransaction: "Cash sale",
};
const REFRESH_MS = 1500; // while an account syncs, its state is read again this often
const summaries = new Map(); // provider/realm → the last Sync now's summary node
let request = 0;
let refresh = null;

/** The error as a bookkeeper can act on it: the ingest API gives it in plain words already
 * (kept as is); a bare code or exception name is put into words here. */
export function errorInWords(error, label = "QuickBooks") {
  if (!error) return null;
  const text = String(error);
  if (/^(QuickBooks|Xero) |^The last sync /.test(text)) return text;
  if (/invalid_grant|reconnect|revoked|refresh token|unauthori[sz]ed|401/i.test(text)) {
    return `${label} no longer accepts Partsemble's access (it was revoked or expired). Reconnect to resume syncing.`;
  }
  if (/429|throttl|rate limit|too many|limit .*used up/i.test(text)) return `${label} asked us to slow down. The sync will try again by itself shortly.`;
  if (/timeout|timed out|unavailable|5\d\d|connection|reset|refused/i.test(text)) {
    return `${label} could not be reached. The sync will try again by itself.`;
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
    const body = await ingest("GET", "api/v1/connections");
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
  const provider = c.provider || "quickbooks";
  const { label: providerLabel, noun } = providerOf(provider);
  const key = `${provider}/${c.realm_id}`;
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
  const node = el("li", { cls: `connection state-${state}`, data: { realm: c.realm_id, provider, state } }, [
    el("div", { cls: "connection-head" }, [
      el("h3", { text: `${providerLabel} ${noun} ${c.realm_id}` }), badge(label, kind),
    ]),
    el("dl", { cls: "facts" }, [
      fact("Last successful sync", c.last_synced_at ? timestamp(c.last_synced_at) : "not yet", { col: "last_synced_at" }),
      fact("Last error", errorInWords(c.last_error, providerLabel) || "none", { col: "last_error" }),
    ]),
    el("div", { cls: "connection-actions" }, buttons),
    summaries.get(key) || el("div", { cls: "sync-summary", attrs: { "aria-live": "polite" }, data: { realm: c.realm_id } }),
  ]);
  node.querySelector(".sync")?.addEventListener("click", () => syncNow(provider, c.realm_id, node));
  node.querySelector(".reconnect")?.addEventListener("click", () => connect(provider, c.realm_id));
  node.querySelector(".disconnect")?.addEventListener("click", () => disconnect(provider, c.realm_id));
  return node;
}

async function syncNow(provider, realm, node) {
  const { label, noun } = providerOf(provider);
  const button = node.querySelector(".sync");
  const box = node.querySelector(".sync-summary");
  summaries.set(`${provider}/${realm}`, box);
  button.disabled = true;
  box.replaceChildren(el("p", { cls: "muted", text: `Syncing with ${label}…` }));
  const path = `api/v1/connections/${encodeURIComponent(provider)}/${encodeURIComponent(realm)}`;
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
    box.replaceChildren(...summary(run, label));
    box.dataset.status = run.status;
  } catch (error) {
    box.replaceChildren(el("p", { cls: "error", text: error instanceof ApiError && error.status === 409
      ? `This ${noun} cannot sync now: reconnect it first.` : `The sync could not run: ${error.message}` }));
  } finally {
    button.disabled = false;
    load();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const SALE_GROUPS = ["created", "updated", "voided", "deleted"];
const uncosted = (run) => SALE_GROUPS.some((name) => (run[name] || []).some((ref) => ref.id === null));

/** A sale the sync read: a link to its detail once costed (the query API's id), the
 * provider's own name for it meanwhile. */
function saleRef(ref) {
  const theirs = ref.qbo_id ?? ref.external_id;
  const text = `${ENTITIES[ref.entity] || ref.entity} ${theirs}`;
  if (ref.id === null || ref.id === undefined) {
    return el("span", { cls: "pending", text: `${text} (being costed)`, data: { qbo: theirs } });
  }
  return el("a", { text, attrs: { href: `?sale=${encodeURIComponent(ref.id)}` }, data: { qbo: theirs, id: ref.id } });
}

function summary(run, label) {
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
      ? `The sync failed${run.error ? `: ${errorInWords(run.error, label)}` : "."}` : "Sync finished." }),
    el("dl", { cls: "sync-counts" }, [
      ...SALE_GROUPS.map((name) => sales(name, run[name])),
      el("div", { data: { group: "skipped" } }, [el("dt", { text: "Skipped" }), el("dd", { cls: "count", text: String(count(run.skipped)) })]),
      el("div", { data: { group: "failed" } }, [el("dt", { text: "Failed" }), el("dd", { cls: "count", text: String(count(run.failed)) })]),
    ]),
  ];
}

/** To the provider's consent page. A new connection starts its first import at the date
 * chosen; a reconnection (``realm``) carries on from where the connection left off (no date). */
async function connect(provider, realm = null) {
  try {
    const params = new URLSearchParams(realm ? {} : { since: $("#connect-since").value || daysAgo(30) });
    const answer = await ingest("GET", `oauth/${encodeURIComponent(provider)}/connect?${params}`, undefined, { credentials: "include" });
    window.location.assign(answer.authorize_url);
  } catch (error) {
    showError(error);
  }
}

async function disconnect(provider, realm) {
  const { label, noun } = providerOf(provider);
  if (!window.confirm(`Disconnect ${label} ${noun} ${realm}? Sales already imported stay; new ones stop arriving.`)) return;
  try {
    await ingest("POST", `api/v1/connections/${encodeURIComponent(provider)}/${encodeURIComponent(realm)}/disconnect`);
  } catch (error) {
    showError(error);
  }
  summaries.delete(`${provider}/${realm}`);
  load();
}

export function wire() {
  $("#connect-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const provider = event.submitter?.dataset.provider || "quickbooks";
    const since = $("#connect-since");
    if (since.value < since.min || since.value > since.max) {
      showError(new Error(`Choose a date from ${since.min} to ${since.max}: the first import reaches back at most 30 days.`));
      return;
    }
    connect(provider);
  });
}
