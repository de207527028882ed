// Numbers and dates as a bookkeeper reads them.
//
// Money arrives from the API as decimal strings already rounded to cents. It is shown with
// the tenant's home currency (symbol, thousands separators) by Intl.NumberFormat, which
// formats a decimal string exactly (never through a float). The few sums the page makes
// itself (a margin % of totals, the form's running total) use exact decimal arithmetic on
// BigInt: no money ever passes through a JavaScript number.

import { DASH } from "./dom.js";

let currency = null; // ISO 4217 code of the tenant's home currency (null: unknown)
let moneyFormat = plainFormat(2);
const formats = new Map();

function plainFormat(digits) {
  return new Intl.NumberFormat(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function setHomeCurrency(code) {
  currency = code || null;
  moneyFormat = currency
    ? new Intl.NumberFormat(undefined, { style: "currency", currency, currencyDisplay: "narrowSymbol" })
    : plainFormat(2);
}

export function homeCurrency() {
  return currency;
}

/** "1234.5" → "$1,234.50" in the home currency; another currency when given. */
export function money(value, code) {
  if (value === null || value === undefined || value === "") return DASH;
  let format = moneyFormat;
  if (code && code !== currency) {
    if (!formats.has(code)) formats.set(code, new Intl.NumberFormat(undefined, { style: "currency", currency: code }));
    format = formats.get(code);
  }
  return format.format(String(value));
}

const qtyFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });

/** A quantity: thousands separators, as many decimals as it has (up to 6). */
export function qty(value) {
  if (value === null || value === undefined || value === "") return DASH;
  return qtyFormat.format(String(value));
}

/** A percentage string from the API ("23.50") → "23.50%". */
export function pct(value) {
  return value === null || value === undefined || value === "" ? DASH : `${value}%`;
}

// --- exact decimals ----------------------------------------------------------------------

const SCALE = 6; // the API's most decimals
const ONE = 10n ** BigInt(SCALE);

/** A decimal string → BigInt in millionths (null when it is not a number). */
export function dec(text) {
  const match = /^\s*([-+]?)(\d*)(?:\.(\d*))?\s*$/.exec(String(text ?? ""));
  if (!match || (match[2] === "" && !match[3])) return null;
  const fraction = (match[3] || "").slice(0, SCALE).padEnd(SCALE, "0");
  const value = BigInt(match[2] || "0") * ONE + BigInt(fraction || "0");
  return match[1] === "-" ? -value : value;
}

/** Divide rounding half to even (as the API rounds). */
function divRound(numerator, denominator) {
  if (denominator < 0n) return divRound(-numerator, -denominator);
  let q = numerator / denominator;
  let r = numerator % denominator;
  if (r < 0n) { q -= 1n; r += denominator; }
  const twice = 2n * r;
  if (twice > denominator || (twice === denominator && q % 2n !== 0n)) q += 1n;
  return q;
}

/** millionths → decimal string with `places` decimals (half-even). */
export function decText(value, places = 2) {
  const scaled = divRound(value, 10n ** BigInt(SCALE - places));
  const negative = scaled < 0n;
  const digits = (negative ? -scaled : scaled).toString().padStart(places + 1, "0");
  const whole = places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
  return negative ? `-${whole}` : whole;
}

export const decMul = (a, b) => divRound(a * b, ONE);

/** 100 × part / whole with 2 decimals (null when whole is 0). */
export function percentOf(part, whole) {
  const p = dec(part);
  const w = dec(whole);
  if (p === null || w === null || w === 0n) return null;
  return decText(divRound(p * 100n * ONE, w), 2);
}

export function negate(text) {
  if (text === null || text === undefined) return text;
  const value = String(text);
  if (/^-?0*(\.0*)?$/.test(value)) return value.replace(/^-/, "");
  return value.startsWith("-") ? value.slice(1) : `-${value}`;
}

// --- dates ---------------------------------------------------------------------------------

const stampFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** An ISO timestamp in the reader's time zone ("Feb 2, 2026, 9:05 AM"). */
export function timestamp(iso) {
  if (!iso) return DASH;
  const parsed = new Date(iso);
  return Number.isNaN(parsed.getTime()) ? String(iso) : stampFormat.format(parsed);
}

/** A Date → "YYYY-MM-DD" (local calendar). */
export function isoDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function daysAgo(days, today = new Date()) {
  return isoDate(new Date(today.getFullYear(), today.getMonth(), today.getDate() - days));
}

/** Date presets: [from, to] of this month, last month, this quarter, year to date, last year. */
export const PRESETS = {
  this_month: "This month",
  last_month: "Last month",
  this_quarter: "This quarter",
  year_to_date: "Year to date",
  last_year: "Last year",
};

export function presetRange(name, today = new Date()) {
  const y = today.getFullYear();
  const m = today.getMonth();
  const day = (year, month, d) => isoDate(new Date(year, month, d));
  switch (name) {
    case "this_month": return [day(y, m, 1), day(y, m + 1, 0)];
    case "last_month": return [day(y, m - 1, 1), day(y, m, 0)];
    case "this_quarter": {
      const first = m - (m % 3);
      return [day(y, first, 1), day(y, first + 3, 0)];
    }
    case "year_to_date": return [day(y, 0, 1), isoDate(today)];
    case "last_year": return [day(y - 1, 0, 1), day(y - 1, 11, 31)];
    default: return null;
  }
}

/** The preset a [from, to] range is, if any (so a reloaded URL shows its preset). */
export function presetOf(from, to, today = new Date()) {
  return Object.keys(PRESETS).find((name) => {
    const range = presetRange(name, today);
    return range[0] === from && range[1] === to;
  }) || "";
}

export const TYPE_LABELS = { invoice: "Invoice", sales_receipt: "Sales receipt", credit_memo: "Credit memo" };
export const typeLabel = (type) => TYPE_LABELS[type] || type;
