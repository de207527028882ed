// One sale: facts, lines with the lots they drew on (or their shortage at WAC), return lots
// of a credit memo, the history in plain words and the cost revisions. Manual sales can be
// edited, voided and deleted here; QuickBooks sales are read-only, with a link to QuickBooks.

import { ApiError, ingest, query, showError, waitForEvents } from "./api.js";
import { $, DASH, badge, cell, el, fact, nodeCell } from "./dom.js";
import { money, pct, qty, timestamp, typeLabel } from "./format.js";
import * as saleForm from "./sale-form.js";

const QBO_PAGES = { invoice: "invoice", sales_receipt: "salesreceipt", credit_memo: "creditmemo" };
let shown = null; // id of the sale asked for last
let hooks = { onClose() {} };

export function qboUrl(sale) {
  return `https://app.qbo.intuit.com/app/${QBO_PAGES[sale.type] || "invoice"}?txnId=${encodeURIComponent(sale.external_id)}`;
}

export async function open(id, { force = false } = {}) {
  const aside = $("#detail");
  if (!force && shown === String(id) && !aside.hidden) return;
  shown = String(id);
  for (const row of document.querySelectorAll("#sales-rows tr")) {
    row.classList.toggle("selected", row.dataset.id === shown);
    row.setAttribute("aria-selected", String(row.dataset.id === shown));
  }
  aside.hidden = false;
  aside.setAttribute("aria-busy", "true");
  $("#sales-layout").classList.add("with-detail");
  try {
    const sale = await query(`api/v1/sales/${encodeURIComponent(id)}`);
    const stock = await stockOf(sale);
    if (shown !== String(id)) return;
    showError(null);
    render(sale, stock);
    aside.dataset.saleId = String(sale.id);
  } catch (error) {
    if (shown === String(id)) showError(error);
  } finally {
    if (shown === String(id)) aside.removeAttribute("aria-busy");
  }
}

export function close() {
  shown = null;
  const aside = $("#detail");
  aside.hidden = true;
  delete aside.dataset.saleId;
  $("#sales-layout").classList.remove("with-detail");
  for (const row of document.querySelectorAll("#sales-rows tr.selected")) {
    row.classList.remove("selected");
    row.setAttribute("aria-selected", "false");
  }
}

/** The stock of the products whose WAC or return lots the sale's lines show. */
async function stockOf(sale) {
  const skus = new Set();
  for (const line of sale.lines || []) {
    if (!line.sku || line.kind !== "inventory") continue;
    if (line.shortage_quantity !== "0" || sale.type === "credit_memo") skus.add(line.sku);
  }
  const entries = await Promise.all([...skus].map(async (sku) => {
    try {
      return [sku, await query(`api/v1/products/${encodeURIComponent(sku)}/stock`)];
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return [sku, null];
      throw error;
    }
  }));
  return Object.fromEntries(entries);
}

function render(sale, stock) {
  $("#detail-title").textContent = `${typeLabel(sale.type)} ${sale.doc_number || sale.external_id}`;
  renderActions(sale);
  const status = el("span", {}, [badge(sale.status, sale.status), sale.shortage ? badge("shortage", "shortage") : null]);
  $("#detail-facts").replaceChildren(
    fact("Date", sale.date, { col: "date" }),
    fact("Customer", sale.customer, { col: "customer" }),
    fact("Source", sale.source === "quickbooks" ? "QuickBooks" : "entered by hand", { col: "source" }),
    // A QuickBooks sale's external id is QuickBooks' own id (the document number is in the title);
    // a manual sale's is the reference it was entered with.
    fact(sale.source === "quickbooks" ? "QuickBooks id" : "Reference", sale.external_id, { col: "external_id" }),
    fact("Status", status, { col: "status" }),
    fact("Updated", timestamp(sale.updated_at), { col: "updated_at" }),
    fact("Revenue", money(sale.revenue), { num: true, col: "revenue" }),
    fact("Cost", money(sale.cost), { num: true, col: "cost" }),
    fact("Margin", money(sale.margin), { num: true, col: "margin" }),
    fact("Margin %", marginPct(sale), { num: true, col: "margin_pct" }),
    ...(sale.notes ? [fact("Notes", sale.notes, { col: "notes" })] : []),
  );
  const rows = [];
  for (const line of sale.lines || []) rows.push(...lineRows(sale, line, stock[line.sku]));
  $("#detail-lines tbody").replaceChildren(...rows);
  renderReturnLots(sale, stock);
  $("#detail-history").replaceChildren(...history(sale).map(([when, text, cls]) =>
    el("li", { cls }, [el("span", { cls: "when muted", text: when }), el("span", { cls: "what", text })])));
  const revisions = sale.cost_revisions || [];
  $("#detail-revisions tbody").replaceChildren(...revisions.map((r) => el("tr", { cls: "revision" }, [
    cell("line_no", r.line_no),
    cell("old_cost", money(r.old_cost), { num: true }),
    cell("new_cost", money(r.new_cost), { num: true }),
    cell("cause", causeInWords(r.cause, sale)),
    cell("created_at", timestamp(r.created_at)),
  ])));
  $("#detail-revisions").hidden = revisions.length === 0;
  $("#detail-no-revisions").hidden = revisions.length > 0;
}

/** A credit memo's margin % carries the sign of its margin (a return gives margin back). */
function marginPct(row) {
  if (row.type === "credit_memo" && row.margin_pct && String(row.margin).startsWith("-") && !row.margin_pct.startsWith("-")) {
    return pct(`-${row.margin_pct}`);
  }
  return pct(row.margin_pct);
}

function renderActions(sale) {
  const actions = [];
  if (sale.source === "manual" && sale.status === "posted") {
    actions.push(el("button", { text: "Edit", cls: "secondary", attrs: { type: "button", id: "sale-edit" } }));
    actions.push(el("button", { text: "Void", cls: "secondary", attrs: { type: "button", id: "sale-void" } }));
  }
  if (sale.source === "manual" && sale.status !== "deleted") {
    actions.push(el("button", { text: "Delete", cls: "danger", attrs: { type: "button", id: "sale-delete" } }));
  }
  if (sale.source === "quickbooks") {
    actions.push(el("a", { text: "Open in QuickBooks", cls: "button secondary",
      attrs: { id: "sale-qbo", href: qboUrl(sale), target: "_blank", rel: "noopener noreferrer" } }));
    actions.push(el("span", { cls: "muted", text: "Change it in QuickBooks; the next sync brings the change here." }));
  }
  $("#detail-actions").replaceChildren(...actions);
  $("#sale-edit")?.addEventListener("click", () => saleForm.openEdit(sale));
  $("#sale-void")?.addEventListener("click", () => remove(sale, "void"));
  $("#sale-delete")?.addEventListener("click", () => remove(sale, "delete"));
}

async function remove(sale, how) {
  const what = `${typeLabel(sale.type).toLowerCase()} ${sale.external_id}`;
  const question = how === "void"
    ? `Void ${what}? It stays listed as voided and its lots go back to stock.`
    : `Delete ${what}? It stays listed as deleted and its lots go back to stock. This cannot be undone.`;
  if (!window.confirm(question)) return;
  const path = `api/v1/sales/${encodeURIComponent(sale.external_id)}`;
  try {
    const answer = how === "void" ? await ingest("POST", `${path}/void`) : await ingest("DELETE", path);
    await waitForEvents(answer.event_ids || []);
    document.dispatchEvent(new CustomEvent("partsemble:sale-saved", { detail: { id: sale.id } }));
  } catch (error) {
    showError(error);
  }
}

function lineRows(sale, line, stock) {
  const short = line.shortage_quantity && line.shortage_quantity !== "0";
  const removed = sale.status !== "posted";
  const item = nodeCell("item", [
    line.sku ? el("span", { cls: "sku", text: line.sku }) : null,
    line.description ? el("span", { cls: "muted desc", text: line.description }) : null,
    line.kind && line.kind !== "inventory" ? badge(line.kind.replace(/_/g, " "), "kind") : null,
    short ? badge(`short ${qty(line.shortage_quantity)}`, "shortage") : null,
    ...(line.flags || []).filter((flag) => flag !== line.kind && !(short && flag === "shortage"))
      .map((flag) => badge(String(flag).replace(/_/g, " "), "flag")),
  ]);
  // A voided or deleted sale keeps its lines' quantities: shown struck through.
  const quantity = removed && line.quantity !== "0"
    ? nodeCell("quantity", [el("s", { text: qty(line.quantity), attrs: { title: `${sale.status}: was ${line.quantity}` } })],
      { num: true })
    : cell("quantity", qty(line.quantity), { num: true });
  const row = el("tr", { cls: `line${short ? " shortage" : ""}${removed ? " removed" : ""}`, data: { line: line.line_no } }, [
    cell("line_no", line.line_no), item, quantity,
    cell("revenue", money(line.revenue), { num: true }),
    cell("cost", money(line.cost), { num: true }),
    cell("margin", money(line.margin), { num: true }),
    cell("margin_pct", marginPct({ ...line, type: sale.type }), { num: true }),
  ]);
  const allocations = line.allocations || [];
  if (allocations.length === 0 && !short) return [row];
  const wac = stock ? stock.wac : null;
  const lots = el("table", { cls: "allocations" }, [
    el("thead", {}, [el("tr", {}, ["Lot", "Received", "Qty", "Unit cost", "Cost"].map((text, i) =>
      el("th", { cls: i >= 2 ? "num" : undefined, text, attrs: { scope: "col" } })))]),
    el("tbody", {}, [
      ...allocations.map((a) => el("tr", { cls: "alloc" }, [
        cell("lot_number", a.lot_number),
        cell("received_at", timestamp(a.received_at)),
        cell("quantity", qty(a.quantity), { num: true }),
        cell("unit_cost", money(a.unit_cost), { num: true }),
        cell("cost", money(a.cost), { num: true }),
      ])),
      short ? el("tr", { cls: "alloc-shortage" }, [
        el("td", { cls: "warn", attrs: { colspan: 2, "data-col": "label" },
          text: `${qty(line.shortage_quantity)} short — costed at WAC ${wac === null ? DASH : money(wac)} (estimate) until stock arrives` }),
        cell("quantity", qty(line.shortage_quantity), { num: true }),
        cell("unit_cost", wac === null ? null : money(wac), { num: true }),
        cell("cost", money(line.shortage_cost), { num: true }),
      ]) : null,
    ]),
  ]);
  return [row, el("tr", { cls: "allocs", data: { line: line.line_no } }, [el("td"), el("td", { attrs: { colspan: 6 } }, [lots])])];
}

/** A posted credit memo's inventory lines come back to stock as return lots. */
function renderReturnLots(sale, stock) {
  const note = $("#detail-return-lots");
  const items = [];
  if (sale.type === "credit_memo" && sale.status === "posted") {
    for (const line of sale.lines || []) {
      if (line.kind !== "inventory" || !line.sku) continue;
      const number = `RET-${sale.source}-${sale.external_id}-${line.line_no}`;
      const lot = (stock[line.sku]?.lots || []).find((l) => l.lot_number === number);
      items.push(el("li", { data: { lot: number } }, [
        el("strong", { text: number }),
        lot ? ` — ${qty(lot.quantity)} × ${line.sku} back in stock at ${money(lot.unit_cost)} (WAC), ${qty(lot.remaining)} not yet sold again`
          : ` — ${qty(line.quantity)} × ${line.sku} back in stock at WAC`,
      ]));
    }
  }
  note.replaceChildren(...(items.length ? [el("span", { text: "Returned to stock as:" }), el("ul", {}, items)] : []));
  note.hidden = items.length === 0;
}

/** The history of the sale as a bookkeeper says it. */
function history(sale) {
  const qbo = sale.source === "quickbooks";
  const entries = (sale.versions || []).map((v, i) => {
    let text;
    if (v.event_type === "sale.removed") text = v.note === "deleted" ? (qbo ? "Deleted in QuickBooks" : "Deleted") : (qbo ? "Voided in QuickBooks" : "Voided");
    else if (i === 0) text = qbo ? "Imported from QuickBooks" : "Entered by hand";
    else if (v.remap) text = "Read again after a product mapping change";
    else text = qbo ? "Edited in QuickBooks" : "Edited";
    if (v.version !== null && v.version !== undefined && v.event_type !== "sale.removed") {
      text += qbo ? ` (SyncToken ${v.version}${v.remap ? `, re-map ${v.remap}` : ""})` : ` (version ${v.version})`;
    }
    if (!v.applied) text += ` — not applied: ${v.note === "not newer" ? "an older version than the one shown" : v.note || "ignored"}`;
    return [timestamp(v.received_at), text, v.applied ? "version" : "version ignored"];
  });
  for (const r of sale.cost_revisions || []) {
    entries.push([timestamp(r.created_at), `Re-costed line ${r.line_no}: ${causeInWords(r.cause, sale)} (${money(r.old_cost)} → ${money(r.new_cost)})`, "revision"]);
  }
  return entries;
}

/** "invoice INV-1032 version 1 (manual)" → "backdated sale INV-1032 took stock …" and so on. */
export function causeInWords(cause, sale) {
  const text = String(cause || "");
  let m = /^(invoice|sales_receipt|credit_memo) (.+) version (\d+) \((\w+)\)$/.exec(text);
  if (m) {
    const [, type, ref, version] = m;
    if (sale && ref === sale.external_id && type === sale.type) return "this sale was changed";
    if (type === "credit_memo") return `return ${ref} changed the stock this line drew on`;
    if (version === "1" || version === "0") return `backdated sale ${ref} took stock first`;
    return `earlier sale ${ref} was edited`;
  }
  m = /^(invoice|sales_receipt|credit_memo) (.+) (voided|deleted) \((\w+)\)$/.exec(text);
  if (m) return `${typeLabel(m[1]).toLowerCase()} ${m[2]} was ${m[3]}, its lots went back to stock`;
  m = /^lot (.+) of (.+) (received|corrected)$/.exec(text);
  if (m) return m[3] === "received" ? `lot ${m[1]} of ${m[2]} arrived` : `the cost of lot ${m[1]} of ${m[2]} was corrected`;
  m = /^product (.+) updated$/.exec(text);
  if (m) return `product ${m[1]} was changed`;
  return text || DASH;
}

export function wire(options) {
  hooks = { ...hooks, ...options };
  $("#detail-close").addEventListener("click", () => hooks.onClose());
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("#detail").hidden && !document.querySelector("dialog[open]")) hooks.onClose();
  });
}
