// The Sales tab: plain ES modules, no framework, no build step. This module starts the page:
// the ingest API's address, the tenant (home currency; gating when the plan has no sales
// tracking), the views and the URL that says which one is shown.

import { ApiError, askForKey, forgetKey, loadConfig, query, showError } from "./api.js";
import * as connections from "./connections.js";
import { $, $$ } from "./dom.js";
import { setHomeCurrency } from "./format.js";
import * as margins from "./margins.js";
import * as sales from "./sales-list.js";
import * as shortages from "./shortages.js";
import * as stock from "./stock.js";
import { current, navigate, onChange } from "./urlstate.js";

const VIEWS = { sales, margins, stock, shortages, connections };
let gated = false;

function gate(error) {
  gated = true;
  for (const view of $$(".view")) view.hidden = view.id !== "gate";
  $(".tabs").hidden = true;
  $("#print").hidden = true;
  $("#gate-detail").textContent = (error && typeof error.detail === "string" && error.detail)
    || "Your Partsemble plan does not include sales tracking.";
  showError(null);
}

async function route({ view }) {
  if (gated) return;
  const name = VIEWS[view] ? view : "sales";
  for (const [key] of Object.entries(VIEWS)) $(`#view-${key}`).hidden = key !== name;
  for (const tab of $$(".tab")) {
    if (tab.dataset.view === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  document.title = `${$(`#tab-${name}`).textContent} · Partsemble`;
  await VIEWS[name].show(current().params);
}

/** The tenant: its name, home currency and whether its plan has sales tracking. */
async function loadTenant() {
  try {
    const tenant = await query("api/v1/tenant");
    setHomeCurrency(tenant.home_currency);
    if (tenant.name) {
      $("#tenant-name").textContent = tenant.name;
      $("#tenant-name").hidden = false;
    }
    return tenant;
  } catch (error) {
    // A server without GET /api/v1/tenant: amounts are shown without a currency symbol.
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

async function start() {
  $("#key-dialog").addEventListener("cancel", (event) => event.preventDefault()); // a key is needed
  document.addEventListener("partsemble:gated", (event) => gate(event.detail));
  for (const view of Object.values(VIEWS)) view.wire();
  for (const tab of $$(".tab")) {
    tab.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      navigate(tab.dataset.view, {});
    });
  }
  // Links inside the page (a sale in a sync summary, a shortage, a transaction) stay in the page.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href^='?']");
    if (!link || link.classList.contains("tab") || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    const params = new URLSearchParams(link.getAttribute("href").slice(1));
    const view = params.get("view") || "sales";
    params.delete("view");
    navigate(view, Object.fromEntries(params));
  });
  $("#change-key").addEventListener("click", async () => {
    forgetKey();
    await askForKey();
    location.reload();
  });
  $("#print").addEventListener("click", () => window.print());
  onChange((state) => route(state).catch(showError));

  try {
    await loadConfig();
    const tenant = await loadTenant();
    if (tenant && tenant.sales_tracking === false) {
      const missing = [tenant.plan !== "advanced" ? `this account is on the ${tenant.plan} plan` : null,
        tenant.receiving_enabled === false ? "receiving is turned off" : null].filter(Boolean).join(" and ");
      gate({ detail: `Sales tracking needs the Advanced plan with receiving turned on${missing ? `; ${missing}` : ""}.` });
      return;
    }
    document.body.dataset.ready = "true";
    await route(current());
  } catch (error) {
    if (error instanceof ApiError && error.error === "sales_tracking_unavailable") gate(error);
    else showError(error);
  }
}

start();
