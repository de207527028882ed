// The manual sale form (new and edit): header fields, lines with a product picker, a running
// total, and the ingest API's 422 problems shown next to the fields they name. After saving,
// it waits until the costing engine has applied the sale, then shows it costed.

import { ApiError, ingest, query, showError, waitForEvents } from "./api.js";
import { $, $$, el } from "./dom.js";
import { dec, decMul, decText, homeCurrency, isoDate, money } from "./format.js";

const LINE_FIELDS = ["sku", "description", "quantity", "unit_price", "discount"];
let editing = null; // the sale being edited (null: a new sale)
let productsLoaded = false;

function lineRow(values = {}) {
  const index = $$("#form-lines tbody tr").length;
  const input = (name, attrs) => el("input", { attrs: { name, "aria-label": `${name.replace("_", " ")} of line ${index + 1}`,
    value: values[name] ?? "", ...attrs }, data: { field: name } });
  const holder = (name, node) => el("td", { cls: name === "sku" || name === "description" ? "" : "num", attrs: { "data-col": name } },
    [node, el("span", { cls: "field-error", attrs: { role: "alert" }, data: { for: name } })]);
  const skuAndText = el("div", { cls: "line-item" }, [
    input("sku", { type: "search", list: "product-options", placeholder: "SKU", size: 10 }),
    input("description", { type: "text", placeholder: "or description", size: 16 }),
  ]);
  const row = el("tr", { cls: "form-line" }, [
    el("td", { attrs: { "data-col": "item" } }, [skuAndText,
      el("span", { cls: "field-error", attrs: { role: "alert" }, data: { for: "sku" } }),
      el("span", { cls: "field-error", attrs: { role: "alert" }, data: { for: "line" } })]),
    holder("quantity", input("quantity", { type: "text", inputmode: "decimal", size: 6 })),
    holder("unit_price", input("unit_price", { type: "text", inputmode: "decimal", size: 8 })),
    holder("discount", input("discount", { type: "text", inputmode: "decimal", size: 6 })),
    el("td", { cls: "num amount", attrs: { "data-col": "amount" } }),
    el("td", {}, [el("button", { cls: "link remove-line", text: "Remove", attrs: { type: "button", "aria-label": `Remove line ${index + 1}` } })]),
  ]);
  return row;
}

function lines() {
  return $$("#form-lines tbody tr").map((row) => Object.fromEntries(LINE_FIELDS.map((name) =>
    [name, row.querySelector(`[data-field="${name}"]`).value.trim()])));
}

/** Amounts and the total, exact (BigInt millionths), in the sale's currency and at home. */
function updateTotal() {
  const form = $("#sale-form");
  let total = 0n;
  for (const [i, line] of lines().entries()) {
    const q = dec(line.quantity);
    const p = dec(line.unit_price);
    const d = dec(line.discount || "0");
    const cellNode = $$("#form-lines tbody tr")[i].querySelector(".amount");
    if (q === null || p === null || d === null) {
      cellNode.textContent = "–";
      continue;
    }
    const amount = decMul(q, p) - d;
    total += amount;
    cellNode.textContent = money(decText(amount, 2), form.elements.currency.value.trim().toUpperCase() || undefined);
  }
  const currency = form.elements.currency.value.trim().toUpperCase();
  $("#form-total").textContent = money(decText(total, 2), currency || undefined);
  const home = homeCurrency();
  const rate = dec(form.elements.exchange_rate.value);
  $("#form-total-home").textContent = currency && home && currency !== home && rate !== null
    ? `= ${money(decText(decMul(total, rate), 2))} at ${form.elements.exchange_rate.value.trim()}` : "";
}

function clearProblems() {
  for (const node of $$("#sale-form .field-error")) node.textContent = "";
  for (const node of $$("#sale-form [aria-invalid]")) {
    node.removeAttribute("aria-invalid");
    node.removeAttribute("aria-describedby");
  }
  $("#sale-form-error").hidden = true;
}

let problemId = 0;

/** Show a problem next to its field: "date", "lines.0.quantity", "lines.1" (the whole line). */
function showProblem(field, problem) {
  const form = $("#sale-form");
  const m = /^lines\.(\d+)(?:\.(\w+))?$/.exec(field);
  let input = null;
  let slot = null;
  if (m) {
    const row = $$("#form-lines tbody tr")[Number(m[1])];
    const name = m[2] && LINE_FIELDS.includes(m[2]) ? m[2] : null;
    if (row) {
      input = name ? row.querySelector(`[data-field="${name}"]`) : row.querySelector('[data-field="sku"]');
      slot = row.querySelector(`.field-error[data-for="${name || "line"}"]`);
    }
  } else if (form.elements[field] && form.elements[field].closest) {
    input = form.elements[field];
    slot = input.closest("label").querySelector(".field-error");
  }
  if (!slot) {
    const banner = $("#sale-form-error");
    banner.textContent = `${banner.hidden ? "" : `${banner.textContent} `}${field === "body" ? "" : `${field}: `}${problem}`;
    banner.hidden = false;
    return;
  }
  slot.id = slot.id || `problem-${++problemId}`;
  slot.textContent = slot.textContent ? `${slot.textContent} ${problem}` : problem;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", slot.id);
  }
}

/** The checks the page can make itself (the API checks everything again). */
function localProblems(body) {
  const problems = [];
  if (!body.date) problems.push(["date", "Enter the sale's date."]);
  if (!body.reference) problems.push(["reference", "Enter a reference (your document number)."]);
  if (body.lines.length === 0) problems.push(["body", "Add at least one line."]);
  body.lines.forEach((line, i) => {
    if (!line.sku && !line.description) problems.push([`lines.${i}`, "Pick a product or describe the line."]);
    const q = dec(line.quantity);
    if (q === null || q <= 0n) problems.push([`lines.${i}.quantity`, "A quantity above 0."]);
    const p = dec(line.unit_price);
    if (p === null || p < 0n) problems.push([`lines.${i}.unit_price`, "A price of 0 or more."]);
    if (line.discount !== undefined) {
      const d = dec(line.discount);
      if (d === null || d < 0n) problems.push([`lines.${i}.discount`, "A discount of 0 or more."]);
      else if (q !== null && p !== null && d > decMul(q, p)) problems.push([`lines.${i}.discount`, "More than the line's amount."]);
    }
  });
  const home = homeCurrency();
  if (body.currency && home && body.currency !== home && !body.exchange_rate) {
    problems.push(["exchange_rate", `The rate: ${home} per 1 ${body.currency}.`]);
  }
  return problems;
}

function readBody() {
  const form = $("#sale-form");
  const value = (name) => form.elements[name].value.trim();
  const body = { reference: value("reference"), type: value("type"), date: value("date") };
  for (const name of ["customer", "currency", "exchange_rate", "notes"]) if (value(name)) body[name] = value(name);
  if (body.currency) body.currency = body.currency.toUpperCase();
  body.lines = lines().filter((line) => Object.values(line).some(Boolean)).map((line) =>
    Object.fromEntries(Object.entries(line).filter(([, v]) => v !== "")));
  return body;
}

async function save(event) {
  event.preventDefault();
  clearProblems();
  const body = readBody();
  const problems = localProblems(body);
  if (problems.length) {
    for (const [field, problem] of problems) showProblem(field, problem);
    return;
  }
  const button = $("#sale-save");
  button.disabled = true;
  button.textContent = "Saving…";
  try {
    const path = editing ? `api/v1/sales/${encodeURIComponent(editing.external_id)}` : "api/v1/sales";
    const answer = await ingest(editing ? "PUT" : "POST", path, body);
    button.textContent = "Costing…";
    await waitForEvents(answer.event_ids || []);
    const found = await query("api/v1/sales", { source: "manual", external_id: body.reference, limit: 5 });
    const sale = (found.items || []).find((item) => item.external_id === body.reference && item.type === body.type)
      || (found.items || [])[0];
    $("#sale-dialog").close();
    document.dispatchEvent(new CustomEvent("partsemble:sale-saved", { detail: { id: sale ? sale.id : null } }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && Array.isArray(error.detail)) {
      for (const { field, problem } of error.detail) showProblem(field || "body", problem);
    } else if (error instanceof ApiError && error.status === 409) {
      showProblem("reference", "A sale with this reference already exists.");
    } else {
      showProblem("body", error.message);
    }
  } finally {
    button.disabled = false;
    button.textContent = "Save sale";
  }
}

async function loadProducts() {
  if (productsLoaded) return;
  try {
    const body = await ingest("GET", "api/v1/products?limit=500");
    productsLoaded = true;
    $("#product-options").replaceChildren(...(body.items || []).map((p) =>
      el("option", { attrs: { value: p.sku }, text: p.name ? `${p.sku} · ${p.name}` : p.sku })));
  } catch (error) {
    showError(error);
  }
}

function openDialog(title, values, lineValues) {
  const form = $("#sale-form");
  form.reset();
  clearProblems();
  $("#sale-form-title").textContent = title;
  for (const [name, value] of Object.entries(values)) if (form.elements[name]) form.elements[name].value = value ?? "";
  form.elements.reference.readOnly = Boolean(editing);
  $("#form-lines tbody").replaceChildren();
  for (const line of lineValues.length ? lineValues : [{}]) $("#form-lines tbody").append(lineRow(line));
  updateTotal();
  $("#sale-dialog").showModal();
  loadProducts();
}

export function openNew() {
  editing = null;
  openDialog("New manual sale", { date: isoDate(new Date()), type: "invoice" }, []);
}

/** Edit a manual sale: the query API gives lines in home currency after discount, so the
 * form starts from those (unit price = revenue ÷ quantity, in home currency). */
export function openEdit(sale) {
  editing = sale;
  const lineValues = (sale.lines || []).map((line) => {
    const q = dec(line.quantity);
    let revenue = dec(line.revenue);
    if (sale.type === "credit_memo" && revenue !== null) revenue = -revenue;
    const price = q && revenue !== null ? decText((revenue * 1_000_000n) / q, 6).replace(/\.?0+$/, "") : "";
    return { sku: line.sku || "", description: line.description || "", quantity: line.quantity, unit_price: price };
  });
  openDialog(`Edit ${sale.external_id}`, { reference: sale.external_id, type: sale.type, date: sale.date,
    customer: sale.customer || "", notes: sale.notes || "" }, lineValues);
}

export function wire() {
  const form = $("#sale-form");
  for (const label of $$("#sale-form .form-grid label")) {
    label.append(el("span", { cls: "field-error", attrs: { role: "alert" } }));
  }
  form.addEventListener("submit", save);
  form.addEventListener("input", updateTotal);
  $("#add-line").addEventListener("click", () => {
    $("#form-lines tbody").append(lineRow());
    $$("#form-lines tbody tr").at(-1).querySelector("input").focus();
  });
  $("#form-lines").addEventListener("click", (event) => {
    const button = event.target.closest(".remove-line");
    if (!button) return;
    button.closest("tr").remove();
    if (!$$("#form-lines tbody tr").length) $("#form-lines tbody").append(lineRow());
    updateTotal();
  });
  $("#sale-cancel").addEventListener("click", () => $("#sale-dialog").close());
}
