// The page's state lives in its URL (/sales?view=…&filters…&sale=…): a reload, a shared
// link and the back button all show the same thing.

const listeners = [];

export function current() {
  const params = new URLSearchParams(location.search);
  // Links of the first version of the tab: /sales#margins.
  if (!params.has("view") && location.hash === "#margins") params.set("view", "margins");
  return { view: params.get("view") || "sales", params };
}

/** Go to a view with its parameters (empty values dropped); `replace` keeps the history entry. */
export function navigate(view, values = {}, { replace = false } = {}) {
  const params = new URLSearchParams();
  if (view !== "sales") params.set("view", view);
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const search = params.toString();
  const url = `${location.pathname}${search ? `?${search}` : ""}`;
  if (url === `${location.pathname}${location.search}` && !location.hash) return;
  history[replace ? "replaceState" : "pushState"](null, "", url);
  notify();
}

/** The view's values from the URL with `changes` applied (null removes one). */
export function withChanges(changes) {
  const { view, params } = current();
  const values = Object.fromEntries([...params].filter(([name]) => name !== "view"));
  for (const [name, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === "") delete values[name];
    else values[name] = value;
  }
  return { view, values };
}

export function update(changes, options) {
  const { view, values } = withChanges(changes);
  navigate(view, values, options);
}

export function onChange(listener) {
  listeners.push(listener);
}

function notify() {
  const state = current();
  for (const listener of listeners) listener(state);
}

window.addEventListener("popstate", notify);
