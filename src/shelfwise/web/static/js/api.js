// Calls to the shelfwise API from the pages: the page config, API keys kept in localStorage,
// GET with query parameters, and POST /events.

const KEY_SLOTS = { storefront: "shelfwise.key", dashboard: "shelfwise.dashboardKey" };
let keySlot = KEY_SLOTS.storefront;
let configPromise = null;

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
  get needsKey() { return this.status === 401 || this.status === 403; }
}

// Which stored key this page sends: "storefront" (read + events) or "dashboard" (admin).
export function useKeySlot(name) { keySlot = KEY_SLOTS[name]; }
export function storedKey() { return localStorage.getItem(keySlot) || ""; }
export function storeKey(key) {
  if (key) localStorage.setItem(keySlot, key.trim());
  else localStorage.removeItem(keySlot);
}

// {mode: "demo"|"serve", reads_need_key, dashboard_needs_key, events_key (demo only), model}
export function pageConfig() {
  configPromise ??= fetch("/web/config").then((r) => r.json());
  return configPromise;
}

function authHeaders(key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function failure(response) {
  let detail = "";
  try { detail = (await response.json()).detail; } catch { /* not JSON */ }
  return new ApiError(response.status, detail);
}

export function queryString(params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

export async function apiGet(path, params) {
  const response = await fetch(path + queryString(params), { headers: authHeaders(storedKey()) });
  if (!response.ok) throw await failure(response);
  return response.json();
}

// The raw response (for report files: HTML, images), with the key.
export async function apiFetch(path) {
  const response = await fetch(path, { headers: authHeaders(storedKey()) });
  if (!response.ok) throw await failure(response);
  return response;
}

// Events go with the stored key, else (demo only) the events key the server handed out.
export async function postEvents(events) {
  const config = await pageConfig();
  const key = storedKey() || config.events_key;
  const response = await fetch("/events", {
    method: "POST",
    headers: { "content-type": "application/json", ...authHeaders(key) },
    body: JSON.stringify({ events }),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}
