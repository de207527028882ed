// Stock and lots of one product (on hand, WAC, open shortage, every lot oldest first) and its
// transactions (receipts, corrections, sales, reversals, returns), paged, with the CSV.

import { ApiError, downloadCsv, ingest, query, queryUrl, showError } from "./api.js";
import { $, badge, cell, el, fact, nodeCell } from "./dom.js";
import { money, qty, timestamp, typeLabel } from "./format.js";
import { update } from "./urlstate.js";

const KINDS = { RECEIPT: "Received", CORRECTION: "Cost corrected", SALE: "Sold", SALE_REVERSAL: "Sale reversed",
  RETURN: "Returned" };
const state = { sku: null, cursor: null, previous: [], next: null, request: 0 };
let productsLoaded = false;

export async function show(search) {
  loadProducts();
  const sku = search.get("sku") || "";
  $("#stock-form").elements.sku.value = sku;
  $("#stock-empty").hidden = Boolean(sku);
  $("#stock-card").hidden = !sku;
  if (!sku) return;
  const path = `api/v1/products/${encodeURIComponent(sku)}`;
  $("#transactions-csv").href = queryUrl(`${path}/transactions`, { format: "csv" }).toString();
  if (sku !== state.sku) Object.assign(state, { sku, cursor: null, previous: [] });
  const mine = ++state.request;
  const card = $("#stock-card");
  card.setAttribute("aria-busy", "true");
  try {
    const stock = await query(`${path}/stock`);
    if (mine !== state.request) return;
    showError(null);
    renderStock(stock);
    await loadTransactions(mine);
  } catch (error) {
    if (mine === state.request) {
      if (error instanceof ApiError && error.status === 404) {
        $("#stock-card").hidden = true;
        $("#stock-empty").hidden = false;
        $("#stock-empty").textContent = `No product ${sku}.`;
      } else showError(error);
    }
  } finally {
    if (mine === state.request) card.removeAttribute("aria-busy");
  }
}

function renderStock(stock) {
  $("#stock-title").textContent = stock.name ? `${stock.sku} · ${stock.name}` : stock.sku;
  const short = stock.open_shortage && stock.open_shortage !== "0";
  $("#stock-facts").replaceChildren(
    fact("On hand", qty(stock.on_hand), { col: "on_hand" }),
    fact("Weighted average cost", money(stock.wac), { col: "wac" }),
    fact("Open shortage", qty(stock.open_shortage), { col: "open_shortage" }),
  );
  $("#stock-facts").classList.toggle("has-shortage", Boolean(short));
  $("#lots-table tbody").replaceChildren(...(stock.lots || []).map((lot) => {
    const status = lot.status || (lot.remaining === "0" ? "depleted" : "available");
    return el("tr", { cls: `lot ${status}`, data: { lot: lot.lot_number } }, [
      nodeCell("lot_number", [lot.lot_number, lot.is_return || lot.lot_number.startsWith("RET-") ? badge("return", "kind") : null]),
      cell("received_at", timestamp(lot.received_at)),
      cell("unit_cost", money(lot.unit_cost), { num: true }),
      cell("quantity", qty(lot.quantity), { num: true }),
      cell("remaining", qty(lot.remaining), { num: true }),
      nodeCell("status", [badge(status, status === "available" ? "posted" : "voided-plain")]),
    ]);
  }));
}

async function loadTransactions(mine) {
  const note = $("#transactions-empty");
  try {
    const body = await query(`api/v1/products/${encodeURIComponent(state.sku)}/transactions`,
      { limit: 50, cursor: state.cursor });
    if (mine !== state.request) return;
    const items = body.items || [];
    $("#transactions-table tbody").replaceChildren(...items.map(transactionRow));
    note.textContent = "No transactions.";
    note.hidden = items.length > 0;
    state.next = body.next_cursor || null;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    $("#transactions-table tbody").replaceChildren();
    note.textContent = "Transactions are not available from this server yet.";
    note.hidden = false;
    state.next = null;
  }
  $("#transactions-next").disabled = !state.next;
  $("#transactions-prev").disabled = state.previous.length === 0;
  $("#transactions-page").textContent = `Page ${state.previous.length + 1}`;
}

function transactionRow(t) {
  const sale = t.sale
    ? el("a", { text: `${typeLabel(t.sale.type)} ${t.sale.external_id}`, attrs: { href: `?sale=${encodeURIComponent(t.sale.id)}` } })
    : null;
  return el("tr", { cls: `txn kind-${String(t.kind).toLowerCase()}`, data: { kind: t.kind } }, [
    cell("date", t.date && t.date.length > 10 ? timestamp(t.date) : t.date),
    cell("kind", KINDS[t.kind] || t.kind),
    cell("quantity", qty(t.quantity), { num: true }),
    cell("lot_number", t.lot_number),
    nodeCell("sale", [sale]),
    cell("on_hand", qty(t.on_hand), { num: true }),
  ]);
}

async function loadProducts() {
  if (productsLoaded) return;
  productsLoaded = true;
  try {
    const body = await ingest("GET", "api/v1/products?limit=500");
    $("#stock-products").replaceChildren(...(body.items || []).map((p) =>
      el("option", { attrs: { value: p.sku }, text: p.name ? `${p.sku} · ${p.name}` : p.sku })));
  } catch {
    productsLoaded = false; // the picker is a convenience: typing a SKU works without it
  }
}

export function wire() {
  $("#stock-form").addEventListener("submit", (event) => {
    event.preventDefault();
    update({ sku: $("#stock-form").elements.sku.value.trim() });
  });
  const page = async (cursor) => {
    state.cursor = cursor;
    try {
      await loadTransactions(state.request);
    } catch (error) {
      showError(error);
    }
  };
  $("#transactions-next").addEventListener("click", () => {
    if (!state.next) return;
    state.previous.push(state.cursor);
    page(state.next);
  });
  $("#transactions-prev").addEventListener("click", () => {
    if (state.previous.length) page(state.previous.pop());
  });
  $("#transactions-csv").addEventListener("click", (event) => {
    event.preventDefault();
    downloadCsv($("#transactions-csv").href, `transactions-${state.sku}.csv`).catch(showError);
  });
}
