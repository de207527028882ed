// Shortages: lines sold beyond the stock received, open (costed at WAC until a lot arrives)
// or resolved (the API has no CSV of them).

import { query, showError } from "./api.js";
import { $, cell, el, nodeCell } from "./dom.js";
import { money, qty, timestamp, typeLabel } from "./format.js";
import { update } from "./urlstate.js";

const state = { status: null, cursor: null, previous: [], next: null, request: 0 };

export async function show(search) {
  const status = ["open", "resolved", "all"].includes(search.get("status")) ? search.get("status") : "open";
  $("#shortage-filters").elements.status.value = status;
  if (status !== state.status) Object.assign(state, { status, cursor: null, previous: [] });
  await load();
}

async function load() {
  const mine = ++state.request;
  const table = $("#shortages-table");
  table.setAttribute("aria-busy", "true");
  try {
    const body = await query("api/v1/shortages", { status: state.status, limit: 50, cursor: state.cursor });
    if (mine !== state.request) return;
    showError(null);
    const items = body.items || [];
    $("#shortages-table tbody").replaceChildren(...items.map(row));
    $("#shortages-empty").hidden = items.length > 0;
    state.next = body.next_cursor || null;
    $("#shortages-next").disabled = !state.next;
    $("#shortages-prev").disabled = state.previous.length === 0;
    $("#shortages-page").textContent = `Page ${state.previous.length + 1}`;
  } catch (error) {
    if (mine === state.request) showError(error);
  } finally {
    if (mine === state.request) table.removeAttribute("aria-busy");
  }
}

function row(s) {
  // The sale as {id, type, external_id}; the first version of the API gave its fields flat.
  const sale = s.sale || { id: s.sale_id, type: s.type, external_id: s.external_id };
  const link = el("a", { text: `${typeLabel(sale.type)} ${sale.external_id}`,
    attrs: { href: `?sale=${encodeURIComponent(sale.id)}&external_id=${encodeURIComponent(sale.external_id)}` } });
  const short = s.quantity_short ?? s.shortage_quantity;
  return el("tr", { cls: s.resolved_at ? "resolved" : "open", data: { sku: s.sku, sale: sale.id, line: s.line_no } }, [
    cell("since", s.since ? timestamp(s.since) : s.date),
    cell("sku", s.sku),
    nodeCell("sale", [link]),
    cell("line_no", s.line_no, { num: true }),
    cell("quantity_short", qty(short), { num: true }),
    cell("wac_estimate", s.wac_estimate === undefined ? null : money(s.wac_estimate), { num: true }),
    cell("shortage_cost", money(s.shortage_cost), { num: true }),
    cell("resolved_at", s.resolved_at ? timestamp(s.resolved_at) : "open"),
  ]);
}

export function wire() {
  $("#shortage-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    update({ status: $("#shortage-filters").elements.status.value });
  });
  $("#shortages-next").addEventListener("click", () => {
    if (!state.next) return;
    state.previous.push(state.cursor);
    state.cursor = state.next;
    load();
  });
  $("#shortages-prev").addEventListener("click", () => {
    if (!state.previous.length) return;
    state.cursor = state.previous.pop();
    load();
  });
}
