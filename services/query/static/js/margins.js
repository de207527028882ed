// Product margins over a period: a bar chart around a zero axis and the table, with the CSV.

import { downloadCsv, query, queryUrl, showError } from "./api.js";
import { $, cell, el, fillForm, formValues, svg } from "./dom.js";
import { PRESETS, money, pct, presetOf, presetRange, qty } from "./format.js";
import { update } from "./urlstate.js";

let request = 0;

function params(search) {
  const values = {};
  for (const name of ["from", "to"]) if (search.get(name)) values[name] = search.get(name);
  values.sort = ["margin", "margin_pct", "revenue", "cost", "quantity_sold"].includes(search.get("sort")) ? search.get("sort") : "margin";
  values.order = search.get("order") === "asc" ? "asc" : "desc";
  return values;
}

export async function show(search) {
  const values = params(search);
  fillForm($("#margin-filters"), { ...values, preset: presetOf(values.from, values.to) });
  $("#margins-csv").href = queryUrl("api/v1/products/margins", { ...values, format: "csv" }).toString();
  const mine = ++request;
  const chart = $("#margin-chart");
  chart.setAttribute("aria-busy", "true");
  try {
    const body = await query("api/v1/products/margins", values);
    if (mine !== request) return;
    showError(null);
    const items = Array.isArray(body) ? body : (body && body.items) || []; // {"items"}; a bare list is read too
    renderChart(items);
    renderTable(items);
  } catch (error) {
    if (mine === request) showError(error);
  } finally {
    if (mine === request) chart.removeAttribute("aria-busy");
  }
}

function renderTable(items) {
  $("#margins-table tbody").replaceChildren(...items.map((p) => el("tr", { data: { sku: p.sku } }, [
    cell("sku", p.sku),
    cell("name", p.name),
    cell("quantity_sold", qty(p.quantity_sold), { num: true }),
    cell("quantity_returned", qty(p.quantity_returned), { num: true }),
    cell("revenue", money(p.revenue), { num: true }),
    cell("cost", money(p.cost), { num: true }),
    cell("margin", money(p.margin), { num: true }),
    cell("margin_pct", pct(p.margin_pct), { num: true }),
    cell("shortage_quantity", qty(p.shortage_quantity), { num: true, cls: p.shortage_quantity !== "0" ? "warn" : "" }),
  ])));
  $("#margins-empty").hidden = items.length > 0;
  $("#margins-table").hidden = items.length === 0;
}

/** Horizontal bars of margin by product, drawn as inline SVG around a zero axis. */
function renderChart(items) {
  const container = $("#margin-chart");
  if (items.length === 0) {
    container.replaceChildren();
    return;
  }
  const width = 760;
  const rowHeight = 30;
  const top = 8;
  const labelWidth = 200;
  const valueWidth = 120;
  const plotLeft = labelWidth + 10;
  const plotWidth = width - plotLeft - valueWidth;
  const height = top * 2 + rowHeight * items.length;
  // Geometry only: bar lengths need numbers; the labels show the API's amounts.
  const values = items.map((p) => Number(p.margin) || 0);
  const low = Math.min(0, ...values);
  const high = Math.max(0, ...values);
  const span = high - low || 1;
  const x = (v) => plotLeft + ((v - low) / span) * plotWidth;
  const zero = x(0);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", class: "bars",
    "aria-label": "Margin by product" });
  items.forEach((p, i) => {
    const y = top + i * rowHeight;
    const v = values[i];
    const left = Math.min(zero, x(v));
    const barWidth = Math.max(1, Math.abs(x(v) - zero));
    const group = svg("g", { class: v < 0 ? "bar neg" : "bar", "data-sku": p.sku });
    const label = p.name ? `${p.sku} · ${p.name}` : p.sku;
    group.append(svg("title", {}, `${label}: margin ${money(p.margin)} (${pct(p.margin_pct)})`));
    group.append(svg("text", { x: labelWidth, y: y + rowHeight / 2, class: "label", "text-anchor": "end",
      "dominant-baseline": "middle" }, label.length > 30 ? `${label.slice(0, 29)}…` : label));
    group.append(svg("rect", { x: left, y: y + 5, width: barWidth, height: rowHeight - 10, rx: 3 }));
    const after = v < 0 ? left - 6 : left + barWidth + 6;
    group.append(svg("text", { x: after, y: y + rowHeight / 2, class: "value", "dominant-baseline": "middle",
      "text-anchor": v < 0 ? "end" : "start" }, money(p.margin)));
    chart.append(group);
  });
  chart.append(svg("line", { x1: zero, x2: zero, y1: top - 4, y2: height - top + 4, class: "axis" }));
  container.replaceChildren(chart);
}

export function wire() {
  const form = $("#margin-filters");
  const presets = form.elements.preset;
  presets.replaceChildren(el("option", { text: "custom", attrs: { value: "" } }),
    ...Object.entries(PRESETS).map(([value, text]) => el("option", { text, attrs: { value } })));
  presets.addEventListener("change", () => {
    const range = presetRange(presets.value);
    if (range) [form.elements.from.value, form.elements.to.value] = range;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = formValues(form);
    delete values.preset;
    update({ from: null, to: null, ...values });
  });
  $("#margins-csv").addEventListener("click", (event) => {
    event.preventDefault();
    downloadCsv($("#margins-csv").href, "product-margins.csv").catch(showError);
  });
}
