// DOM helpers. Every text from the API goes into the page through textContent (never
// innerHTML), so a customer called "<b>Dyna</b>" is shown as typed.

export const SVG_NS = "http://www.w3.org/2000/svg";
export const DASH = "—";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** An element with a class, a text and attributes; children appended (nulls skipped). */
export function el(tag, { cls, text, attrs, data } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const [name, value] of Object.entries(data || {})) node.dataset[name] = String(value);
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

/** A table cell holding a text (a dash when empty); `num` right-aligns it and marks negatives. */
export function cell(col, value, { num = false, cls = "", title } = {}) {
  const shown = value === null || value === undefined || value === "" ? DASH : String(value);
  const classes = [cls, num ? "num" : "", num && /^[-−(]/.test(shown) ? "neg" : ""].filter(Boolean).join(" ");
  return el("td", { cls: classes || undefined, text: shown, attrs: { "data-col": col, title } });
}

/** A table cell holding nodes. */
export function nodeCell(col, children, { num = false, cls = "" } = {}) {
  return el("td", { cls: [cls, num ? "num" : ""].filter(Boolean).join(" ") || undefined, attrs: { "data-col": col } },
    children);
}

export function badge(text, kind) {
  return el("span", { cls: `badge badge-${kind}`, text });
}

/** A <dl> entry: term and value (value: text or a node). */
export function fact(term, value, { num = false, col } = {}) {
  const dd = value instanceof Node ? el("dd", {}, [value])
    : el("dd", { text: value === null || value === undefined || value === "" ? DASH : value });
  if (num) dd.className = /^[-−(]/.test(dd.textContent) ? "num neg" : "num";
  if (col) dd.dataset.col = col;
  return el("div", {}, [el("dt", { text: term }), dd]);
}

/** The form's non-empty fields as a plain object of trimmed strings. */
export function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form)) {
    const text = String(value).trim();
    if (text) values[name] = text;
  }
  return values;
}

/** Put values into a form's named fields (missing ones emptied). */
export function fillForm(form, values) {
  for (const field of form.elements) {
    if (!field.name || field.type === "submit" || field.type === "button") continue;
    field.value = values[field.name] ?? (field.tagName === "SELECT" ? (field.options[0]?.value ?? "") : "");
  }
}

/** Mark an element busy while a promise runs. */
export async function busy(node, promise) {
  node.setAttribute("aria-busy", "true");
  try {
    return await promise;
  } finally {
    node.removeAttribute("aria-busy");
  }
}
