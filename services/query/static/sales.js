// The Sales tab of the query service: a plain ES module, no framework, no build.
//
// Rules kept throughout:
//  * every text from the API goes into the page through textContent (never innerHTML);
//  * money arrives as decimal strings already rounded by the API and is shown as given,
//    right-aligned; it is never parsed for arithmetic (totals come from the API's summary).
//    The only numeric use is the length of the chart's bars, which is geometry, not money;
//  * every request carries `Authorization: Bearer <key>`; the key is asked once, kept in
//    sessionStorage, and asked again whenever the API answers 401.

const KEY_STORAGE = "partsemble.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";
const TYPE_LABELS = { invoice: "Invoice", sales_receipt: "Sales receipt", credit_memo: "Credit memo" };
const DASH = "—";

const $ = (selector, root = document) => root.querySelector(selector);

// --- DOM helpers (text only) -------------------------------------------------------------

function el(tag, { cls, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

/** A table cell; money and percentages right-aligned, negatives marked (by sign, not by value). */
function cell(col, value, { num = false, cls = "" } = {}) {
  const shown = value === null || value === undefined || value === "" ? DASH : String(value);
  const classes = [cls, num ? "num" : "", num && shown.startsWith("-") ? "neg" : ""].filter(Boolean).join(" ");
  return el("td", { cls: classes || undefined, text: shown, attrs: { "data-col": col } });
}

function badge(text, kind) {
  return el("span", { cls: `badge badge-${kind}`, text });
}

function timestamp(iso) {
  if (!iso) return DASH;
  const parsed = new Date(iso);
  if (Number.isNaN(parsed.getTime())) return iso;
  return `${parsed.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function pct(value) {
  return value === null || value === undefined ? DASH : `${value}%`;
}

// --- API key and requests ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    let text;
    if (detail && typeof detail === "object" && "parameter" in detail) text = `${detail.parameter}: ${detail.problem}`;
    else if (typeof detail === "string") text = detail;
    else if (detail) text = JSON.stringify(detail);
    super(`${(body && body.error) || `HTTP ${status}`}${text ? ` — ${text}` : ""}`);
    this.status = status;
  }
}

let pendingKey = null;

/** Show the key form; resolves with the key the user enters. Concurrent callers share one form. */
function askForKey(message) {
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

async function api(path, params = {}) {
  // Relative to the page (/sales): "api/v1/…" is the query API of the same origin.
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  let message;
  for (;;) {
    const key = sessionStorage.getItem(KEY_STORAGE) || (await askForKey(message));
    const response = await fetch(url, { headers: { Authorization: `Bearer ${key}`, Accept: "application/json" } });
    if (response.status === 401) {
      sessionStorage.removeItem(KEY_STORAGE);
      message = "That API key was not accepted. Please enter a valid key.";
      await askForKey(message);
      continue;
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }
}

function showError(error) {
  const banner = $("#error");
  if (!error) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  banner.textContent = error instanceof ApiError ? `The request failed: ${error.message}` : `Error: ${error.message}`;
  banner.hidden = false;
}

// --- sales list ----------------------------------------------------------------------------

const state = {
  filters: {},
  sort: "date",
  order: "desc",
  limit: 25,
  cursor: null, // cursor of the page shown (null: the first page)
  previous: [], // cursors of the pages before it, for "Previous"
  nextCursor: null,
  selected: null,
  request: 0,
};

function resetPaging() {
  state.cursor = null;
  state.previous = [];
}

async function loadSales() {
  const request = ++state.request;
  const table = $("#sales-table");
  table.setAttribute("aria-busy", "true");
  try {
    const body = await api("api/v1/sales", {
      ...state.filters, sort: state.sort, order: state.order, limit: state.limit, cursor: state.cursor,
    });
    if (request !== state.request) return; // a newer request superseded this one
    showError(null);
    renderSales(body);
  } catch (error) {
    if (request === state.request) showError(error);
  } finally {
    if (request === state.request) table.removeAttribute("aria-busy");
  }
}

function renderSales(body) {
  const items = body.items || [];
  const rows = items.map(saleRow);
  $("#sales-rows").replaceChildren(...rows);
  $("#sales-empty").hidden = items.length > 0;

  const summary = body.summary || {};
  for (const name of ["count", "revenue", "cost", "margin"]) {
    const node = $(`#totals [data-total="${name}"]`);
    node.textContent = summary[name] ?? DASH;
    node.classList.toggle("neg", String(summary[name] ?? "").startsWith("-"));
  }

  state.nextCursor = body.next_cursor || null;
  $("#next").disabled = !state.nextCursor;
  $("#prev").disabled = state.previous.length === 0;
  const page = state.previous.length + 1;
  const pages = Math.max(1, Math.ceil((Number(summary.count) || 0) / state.limit));
  $("#page-info").textContent = `Page ${page} of ${pages}`;

  for (const th of document.querySelectorAll("#sales-table th[data-sort]")) {
    if (th.dataset.sort !== state.sort) th.removeAttribute("aria-sort");
    else th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
  }
}

function saleRow(item) {
  const classes = ["sale"];
  if (item.shortage) classes.push("shortage");
  if (item.status !== "posted") classes.push(`status-${item.status}`);
  if (String(item.id) === String(state.selected)) classes.push("selected");

  const documentCell = el("td", { attrs: { "data-col": "document" } }, [
    el("span", { cls: "doc", text: item.doc_number || item.external_id }),
    el("span", { cls: `muted type type-${item.type}`, text: TYPE_LABELS[item.type] || item.type }),
  ]);
  const statusCell = el("td", { attrs: { "data-col": "status" } }, [
    badge(item.status, item.status),
    item.shortage ? badge("shortage", "shortage") : null,
  ]);
  const row = el("tr", { cls: classes.join(" "), attrs: { "data-id": item.id, tabindex: 0 } }, [
    cell("date", item.date),
    documentCell,
    cell("customer", item.customer),
    cell("revenue", item.revenue, { num: true }),
    cell("cost", item.cost, { num: true }),
    cell("margin", item.margin, { num: true }),
    cell("margin_pct", item.margin_pct, { num: true }),
    statusCell,
  ]);
  row.setAttribute("aria-selected", String(String(item.id) === String(state.selected)));
  return row;
}

function readFilters(form) {
  const filters = {};
  for (const [name, value] of new FormData(form)) {
    const text = String(value).trim();
    if (text) filters[name] = text;
  }
  return filters;
}

// --- sale detail ---------------------------------------------------------------------------

async function openDetail(id) {
  state.selected = String(id);
  for (const row of document.querySelectorAll("#sales-rows tr")) {
    const selected = row.dataset.id === state.selected;
    row.classList.toggle("selected", selected);
    row.setAttribute("aria-selected", String(selected));
  }
  const aside = $("#detail");
  aside.hidden = false;
  aside.setAttribute("aria-busy", "true");
  $("#sales-layout").classList.add("with-detail");
  try {
    const sale = await api(`api/v1/sales/${encodeURIComponent(id)}`);
    if (state.selected !== String(id)) return;
    showError(null);
    renderDetail(sale);
    aside.dataset.saleId = String(sale.id);
  } catch (error) {
    showError(error);
  } finally {
    aside.removeAttribute("aria-busy");
  }
}

function closeDetail() {
  state.selected = null;
  $("#detail").hidden = true;
  delete $("#detail").dataset.saleId;
  $("#sales-layout").classList.remove("with-detail");
  for (const row of document.querySelectorAll("#sales-rows tr.selected")) {
    row.classList.remove("selected");
    row.setAttribute("aria-selected", "false");
  }
}

function fact(term, value, { num = false, col } = {}) {
  const dd = el("dd", { text: value === null || value === undefined || value === "" ? DASH : value });
  if (num) dd.className = String(value ?? "").startsWith("-") ? "num neg" : "num";
  if (col) dd.dataset.col = col;
  return el("div", {}, [el("dt", { text: term }), dd]);
}

function renderDetail(sale) {
  $("#detail-title").textContent = `${TYPE_LABELS[sale.type] || sale.type} ${sale.doc_number || sale.external_id}`;
  const status = el("dd", { attrs: { "data-col": "status" } }, [
    badge(sale.status, sale.status), sale.shortage ? badge("shortage", "shortage") : null,
  ]);
  $("#detail-facts").replaceChildren(
    fact("Date", sale.date, { col: "date" }),
    fact("Customer", sale.customer, { col: "customer" }),
    fact("Source", sale.source, { col: "source" }),
    fact("External id", sale.external_id, { col: "external_id" }),
    el("div", {}, [el("dt", { text: "Status" }), status]),
    fact("Updated", timestamp(sale.updated_at), { col: "updated_at" }),
    fact("Revenue", sale.revenue, { num: true, col: "revenue" }),
    fact("Cost", sale.cost, { num: true, col: "cost" }),
    fact("Margin", sale.margin, { num: true, col: "margin" }),
    fact("Margin %", pct(sale.margin_pct), { num: true, col: "margin_pct" }),
  );

  const lineRows = [];
  for (const line of sale.lines || []) lineRows.push(...lineRowsFor(line));
  $("#detail-lines tbody").replaceChildren(...lineRows);

  $("#detail-versions tbody").replaceChildren(...(sale.versions || []).map((v) => el("tr", { cls: "version" }, [
    cell("version", v.version == null ? null : (v.remap ? `${v.version} (re-map ${v.remap})` : v.version)),
    cell("event_type", v.event_type),
    cell("applied", v.applied ? "yes" : "no"),
    cell("received_at", timestamp(v.received_at)),
    cell("note", v.note),
  ])));

  const revisions = sale.cost_revisions || [];
  $("#detail-revisions tbody").replaceChildren(...revisions.map((r) => el("tr", { cls: "revision" }, [
    cell("line_no", r.line_no),
    cell("old_cost", r.old_cost, { num: true }),
    cell("new_cost", r.new_cost, { num: true }),
    cell("cause", r.cause),
    cell("created_at", timestamp(r.created_at)),
  ])));
  $("#detail-revisions").hidden = revisions.length === 0;
  $("#detail-no-revisions").hidden = revisions.length > 0;
}

function lineRowsFor(line) {
  const short = line.shortage_quantity && line.shortage_quantity !== "0";
  const item = el("td", { attrs: { "data-col": "item" } }, [
    line.sku ? el("span", { cls: "sku", text: line.sku }) : null,
    line.description ? el("span", { cls: "muted desc", text: line.description }) : null,
    line.kind && line.kind !== "inventory" ? badge(line.kind.replace(/_/g, " "), "kind") : null,
    short ? badge(`short ${line.shortage_quantity}`, "shortage") : null,
    // Flags not already shown by the kind and shortage badges.
    ...(line.flags || []).filter((flag) => flag !== line.kind && !(short && flag === "shortage"))
      .map((flag) => badge(String(flag).replace(/_/g, " "), "flag")),
  ]);
  const row = el("tr", { cls: short ? "line shortage" : "line", attrs: { "data-line": line.line_no } }, [
    cell("line_no", line.line_no),
    item,
    cell("quantity", line.quantity, { num: true }),
    cell("revenue", line.revenue, { num: true }),
    cell("cost", line.cost, { num: true }),
    cell("margin", line.margin, { num: true }),
    cell("margin_pct", line.margin_pct, { num: true }),
  ]);
  const allocations = line.allocations || [];
  if (allocations.length === 0 && !short) return [row];

  const lots = el("table", { cls: "allocations" }, [
    el("thead", {}, [el("tr", {}, [
      el("th", { text: "Lot" }), el("th", { text: "Received" }), el("th", { cls: "num", text: "Qty" }),
      el("th", { cls: "num", text: "Unit cost" }), el("th", { cls: "num", text: "Cost" }),
    ])]),
    el("tbody", {}, [
      ...allocations.map((a) => el("tr", { cls: "alloc" }, [
        cell("lot_number", a.lot_number),
        cell("received_at", timestamp(a.received_at)),
        cell("quantity", a.quantity, { num: true }),
        cell("unit_cost", a.unit_cost, { num: true }),
        cell("cost", a.cost, { num: true }),
      ])),
      short ? el("tr", { cls: "alloc-shortage" }, [
        el("td", { cls: "warn", text: "not in stock", attrs: { colspan: 2 } }),
        cell("quantity", line.shortage_quantity, { num: true }),
        el("td"),
        cell("cost", line.shortage_cost, { num: true }),
      ]) : null,
    ]),
  ]);
  const detail = el("tr", { cls: "allocs", attrs: { "data-line": line.line_no } }, [
    el("td"), el("td", { attrs: { colspan: 6 } }, [lots]),
  ]);
  return [row, detail];
}

// --- product margins -----------------------------------------------------------------------

let marginsRequest = 0;

async function loadMargins() {
  const request = ++marginsRequest;
  const params = readFilters($("#margin-filters"));
  const chart = $("#margin-chart");
  chart.setAttribute("aria-busy", "true");
  try {
    const body = await api("api/v1/products/margins", params);
    if (request !== marginsRequest) return;
    showError(null);
    // The contract is {"items": [...]}; a bare list is accepted too.
    const items = Array.isArray(body) ? body : (body && body.items) || [];
    renderMarginChart(items);
    renderMarginTable(items);
  } catch (error) {
    if (request === marginsRequest) showError(error);
  } finally {
    if (request === marginsRequest) chart.removeAttribute("aria-busy");
  }
}

function renderMarginTable(items) {
  $("#margins-table tbody").replaceChildren(...items.map((p) => el("tr", { attrs: { "data-sku": p.sku } }, [
    cell("sku", p.sku),
    cell("name", p.name),
    cell("quantity_sold", p.quantity_sold, { num: true }),
    cell("quantity_returned", p.quantity_returned, { num: true }),
    cell("revenue", p.revenue, { num: true }),
    cell("cost", p.cost, { num: true }),
    cell("margin", p.margin, { num: true }),
    cell("margin_pct", p.margin_pct, { num: true }),
    cell("shortage_quantity", p.shortage_quantity, { num: true, cls: p.shortage_quantity !== "0" ? "warn" : "" }),
  ])));
  $("#margins-empty").hidden = items.length > 0;
  $("#margins-table").hidden = items.length === 0;
}

/** Horizontal bars of margin by product, drawn as inline SVG around a zero axis. */
function renderMarginChart(items) {
  const container = $("#margin-chart");
  if (items.length === 0) {
    container.replaceChildren();
    return;
  }
  const width = 760;
  const rowHeight = 30;
  const top = 8;
  const labelWidth = 200;
  const valueWidth = 110;
  const plotLeft = labelWidth + 10;
  const plotWidth = width - plotLeft - valueWidth;
  const height = top * 2 + rowHeight * items.length;

  // Geometry only: bar lengths need numbers; the labels show the API's strings.
  const values = items.map((p) => Number(p.margin) || 0);
  const low = Math.min(0, ...values);
  const high = Math.max(0, ...values);
  const span = high - low || 1;
  const x = (v) => plotLeft + ((v - low) / span) * plotWidth;
  const zero = x(0);

  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", class: "bars",
    "aria-label": "Margin by product",
  });
  items.forEach((p, i) => {
    const y = top + i * rowHeight;
    const v = values[i];
    const left = Math.min(zero, x(v));
    const barWidth = Math.max(1, Math.abs(x(v) - zero));
    const group = svg("g", { class: v < 0 ? "bar neg" : "bar", "data-sku": p.sku });
    const label = p.name ? `${p.sku} · ${p.name}` : p.sku;
    group.append(svg("title", {}, `${label}: margin ${p.margin} (${pct(p.margin_pct)})`));
    group.append(svg("text", { x: labelWidth, y: y + rowHeight / 2, class: "label", "text-anchor": "end",
      "dominant-baseline": "middle" }, label.length > 30 ? `${label.slice(0, 29)}…` : label));
    group.append(svg("rect", { x: left, y: y + 5, width: barWidth, height: rowHeight - 10, rx: 3 }));
    const after = v < 0 ? left - 6 : left + barWidth + 6;
    group.append(svg("text", { x: after, y: y + rowHeight / 2, class: "value", "dominant-baseline": "middle",
      "text-anchor": v < 0 ? "end" : "start" }, p.margin));
    chart.append(group);
  });
  chart.append(svg("line", { x1: zero, x2: zero, y1: top - 4, y2: height - top + 4, class: "axis" }));
  container.replaceChildren(chart);
}

// --- views and wiring ----------------------------------------------------------------------

let marginsLoaded = false;

function showView(name) {
  const margins = name === "margins";
  $("#view-sales").hidden = margins;
  $("#view-margins").hidden = !margins;
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (margins && !marginsLoaded) {
    marginsLoaded = true;
    loadMargins();
  }
}

function currentView() {
  return location.hash === "#margins" ? "margins" : "sales";
}

function wire() {
  $("#key-dialog").addEventListener("cancel", (event) => event.preventDefault()); // a key is needed

  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      history.replaceState(null, "", tab.dataset.view === "margins" ? "#margins" : "#sales");
      showView(tab.dataset.view);
    });
  }
  window.addEventListener("hashchange", () => showView(currentView()));

  $("#change-key").addEventListener("click", async () => {
    sessionStorage.removeItem(KEY_STORAGE);
    await askForKey();
    loadSales();
    if (marginsLoaded) loadMargins();
  });

  const filters = $("#filters");
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    state.filters = readFilters(filters);
    resetPaging();
    loadSales();
  });
  filters.addEventListener("reset", () => {
    setTimeout(() => {
      state.filters = {};
      resetPaging();
      loadSales();
    });
  });

  for (const th of document.querySelectorAll("#sales-table th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const column = th.dataset.sort;
      if (state.sort === column) state.order = state.order === "asc" ? "desc" : "asc";
      else {
        state.sort = column;
        state.order = "desc";
      }
      resetPaging(); // a cursor belongs to one sort and order
      loadSales();
    });
  }

  $("#next").addEventListener("click", () => {
    if (!state.nextCursor) return;
    state.previous.push(state.cursor);
    state.cursor = state.nextCursor;
    loadSales();
  });
  $("#prev").addEventListener("click", () => {
    if (state.previous.length === 0) return;
    state.cursor = state.previous.pop();
    loadSales();
  });
  const pageSize = $("#page-size");
  state.limit = Number(pageSize.value);
  pageSize.addEventListener("change", () => {
    state.limit = Number(pageSize.value);
    resetPaging();
    loadSales();
  });

  const rows = $("#sales-rows");
  rows.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row) openDetail(row.dataset.id);
  });
  rows.addEventListener("keydown", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      openDetail(row.dataset.id);
    }
  });
  $("#detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("#detail").hidden && !$("#key-dialog").open) closeDetail();
  });

  $("#margin-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadMargins();
  });
}

wire();
showView(currentView());
loadSales();
