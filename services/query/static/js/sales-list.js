// The sales list: filters (in the URL), sortable columns, cursor paging, totals of posted
// sales (voided and deleted counted apart), the overall margin %, and the CSV of the same filters.

import { ApiError, downloadCsv, query, queryUrl, showError } from "./api.js";
import { $, $$, DASH, badge, cell, el, fillForm, formValues, nodeCell } from "./dom.js";
import { PRESETS, money, negate, pct, percentOf, presetOf, presetRange, typeLabel } from "./format.js";
import * as detail from "./sale-detail.js";
import * as saleForm from "./sale-form.js";
import { current, update, withChanges } from "./urlstate.js";

export const FILTERS = ["from", "to", "customer", "status", "type", "source", "external_id", "sku", "shortage",
  "min_margin_pct", "max_margin_pct"];
const SORTS = ["date", "revenue", "cost", "margin", "margin_pct"];

const state = {
  key: null, // the filters, sort, order and size of the list shown (a change resets paging)
  cursor: null, // cursor of the page shown (null: the first page)
  previous: [], // cursors of the pages before it, for "Previous"
  nextCursor: null,
  request: 0,
};

/** The list's request parameters from the URL. */
function listParams(params) {
  const values = {};
  for (const name of FILTERS) if (params.get(name)) values[name] = params.get(name);
  values.sort = SORTS.includes(params.get("sort")) ? params.get("sort") : "date";
  values.order = params.get("order") === "asc" ? "asc" : "desc";
  const limit = Number(params.get("limit"));
  values.limit = [5, 25, 50, 100].includes(limit) ? limit : 25;
  return values;
}

/** A credit memo's margin % with the sign of its margin: a return gives margin back. */
export function shownMarginPct(sale) {
  if (sale.type === "credit_memo" && sale.margin_pct && String(sale.margin).startsWith("-")) {
    return pct(sale.margin_pct.startsWith("-") ? sale.margin_pct : negate(sale.margin_pct));
  }
  return pct(sale.margin_pct);
}

export async function show(params) {
  const values = listParams(params);
  const key = JSON.stringify(values);
  fillForm($("#filters"), { ...values, preset: presetOf(values.from, values.to) });
  $("#page-size").value = String(values.limit);
  const csvParams = Object.fromEntries(Object.entries(values).filter(([name]) => name !== "limit"));
  $("#sales-csv").href = queryUrl("api/v1/sales", { ...csvParams, format: "csv" }).toString();
  if (key !== state.key) {
    state.key = key;
    state.cursor = null;
    state.previous = [];
    await load(values);
  }
  const sale = params.get("sale");
  if (sale) await detail.open(sale);
  else detail.close();
}

async function load(values = listParams(current().params)) {
  const request = ++state.request;
  const table = $("#sales-table");
  table.setAttribute("aria-busy", "true");
  try {
    const [body, voided, deleted] = await Promise.all([
      query("api/v1/sales", { ...values, cursor: state.cursor }),
      // Counted apart: the totals are of posted sales (a voided or deleted sale has zeros).
      values.status ? null : query("api/v1/sales", { ...values, status: "voided", limit: 1 }),
      values.status ? null : query("api/v1/sales", { ...values, status: "deleted", limit: 1 }),
    ]);
    if (request !== state.request) return; // a newer request superseded this one
    showError(null);
    render(body, values, voided, deleted);
  } catch (error) {
    if (request === state.request) showError(error);
  } finally {
    if (request === state.request) table.removeAttribute("aria-busy");
  }
}

function render(body, values, voided, deleted) {
  const items = body.items || [];
  $("#sales-rows").replaceChildren(...items.map(saleRow));
  $("#sales-empty").hidden = items.length > 0;

  const summary = body.summary || {};
  const count = Number(summary.count) || 0;
  let counts;
  if (values.status === "posted") counts = { posted: count, voided: null, deleted: null };
  else if (values.status === "voided") counts = { posted: 0, voided: count, deleted: null };
  else if (values.status === "deleted") counts = { posted: 0, voided: null, deleted: count };
  else {
    const v = Number(voided.summary.count) || 0;
    const d = Number(deleted.summary.count) || 0;
    counts = { posted: count - v - d, voided: v, deleted: d };
  }
  const totals = {
    posted: counts.posted,
    voided: counts.voided ?? DASH,
    deleted: counts.deleted ?? DASH,
    revenue: money(summary.revenue),
    cost: money(summary.cost),
    margin: money(summary.margin),
    margin_pct: pct(percentOf(summary.margin, summary.revenue)),
  };
  for (const [name, text] of Object.entries(totals)) {
    const node = $(`#totals [data-total="${name}"]`);
    node.textContent = String(text);
    node.classList.toggle("neg", /^[-−]/.test(String(text)));
    node.dataset.value = name in summary ? String(summary[name]) : String(text);
  }

  state.nextCursor = body.next_cursor || null;
  $("#next").disabled = !state.nextCursor;
  $("#prev").disabled = state.previous.length === 0;
  const pages = Math.max(1, Math.ceil(count / values.limit));
  $("#page-info").textContent = `Page ${state.previous.length + 1} of ${pages}`;

  for (const th of $$("#sales-table th[data-sort]")) {
    if (th.dataset.sort !== values.sort) th.removeAttribute("aria-sort");
    else th.setAttribute("aria-sort", values.order === "asc" ? "ascending" : "descending");
  }
}

function saleRow(item) {
  const selected = String(item.id) === current().params.get("sale");
  const classes = ["sale", item.shortage ? "shortage" : "", item.status !== "posted" ? `status-${item.status}` : "",
    selected ? "selected" : ""].filter(Boolean);
  const link = el("a", {
    cls: "doc", text: item.doc_number || item.external_id,
    attrs: { href: `?${new URLSearchParams(withChanges({ sale: item.id }).values)}` },
  });
  const row = el("tr", { cls: classes.join(" "), data: { id: item.id, type: item.type } }, [
    cell("date", item.date),
    nodeCell("document", [link, el("span", { cls: `muted type type-${item.type}`, text: typeLabel(item.type) })]),
    cell("customer", item.customer),
    cell("revenue", money(item.revenue), { num: true }),
    cell("cost", money(item.cost), { num: true }),
    cell("margin", money(item.margin), { num: true }),
    cell("margin_pct", shownMarginPct(item), { num: true }),
    nodeCell("status", [badge(item.status, item.status), item.shortage ? badge("shortage", "shortage") : null]),
  ]);
  row.setAttribute("aria-selected", String(selected));
  return row;
}

/** Reload the list where it is (after a change to a sale). */
export function reload() {
  return load();
}

export function wire() {
  const presets = $("#preset");
  presets.replaceChildren(el("option", { text: "custom", attrs: { value: "" } }),
    ...Object.entries(PRESETS).map(([value, text]) => el("option", { text, attrs: { value } })));
  const form = $("#filters");
  presets.addEventListener("change", () => {
    const range = presetRange(presets.value);
    if (range) [form.elements.from.value, form.elements.to.value] = range;
  });
  for (const name of ["from", "to"]) form.elements[name].addEventListener("input", () => { presets.value = ""; });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = formValues(form);
    delete values.preset;
    const { params } = current();
    for (const name of ["sort", "order", "limit"]) if (params.get(name)) values[name] = params.get(name);
    update({ ...Object.fromEntries(FILTERS.map((name) => [name, null])), ...values, sale: null });
  });
  form.addEventListener("reset", () => setTimeout(() => {
    update({ ...Object.fromEntries(FILTERS.map((name) => [name, null])), sale: null });
  }));

  for (const th of $$("#sales-table th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const values = listParams(current().params);
      const column = th.dataset.sort;
      const order = values.sort === column && values.order === "desc" ? "asc" : "desc";
      update({ sort: column, order });
    });
  }

  $("#next").addEventListener("click", () => {
    if (!state.nextCursor) return;
    state.previous.push(state.cursor);
    state.cursor = state.nextCursor;
    load();
  });
  $("#prev").addEventListener("click", () => {
    if (state.previous.length === 0) return;
    state.cursor = state.previous.pop();
    load();
  });
  $("#page-size").addEventListener("change", () => update({ limit: $("#page-size").value }));

  const rows = $("#sales-rows");
  rows.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (!row || event.ctrlKey || event.metaKey || event.shiftKey) return; // a new tab: the link's own job
    event.preventDefault();
    update({ sale: row.dataset.id });
  });
  $("#sales-csv").addEventListener("click", (event) => {
    event.preventDefault();
    downloadCsv($("#sales-csv").href, "sales.csv").catch(showError);
  });
  $("#new-sale").addEventListener("click", () => saleForm.openNew());
  document.addEventListener("partsemble:sale-saved", (event) => {
    load();
    const { id } = event.detail;
    if (id && current().params.get("sale") !== String(id)) update({ sale: id });
    else if (id) detail.open(id, { force: true });
  });
  detail.wire({ onClose: () => update({ sale: null }) });
  saleForm.wire();
}

export { ApiError };
