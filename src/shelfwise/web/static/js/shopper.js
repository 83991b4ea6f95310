// Who is shopping (a demo user picked in the header, or an anonymous session) and the events
// their clicks send to POST /events. Recommendations wait for sent events, so a click shapes
// the very next list.

import { postEvents } from "./api.js";

const USER_KEY = "shelfwise.user";
const SESSION_KEY = "shelfwise.session";
const listeners = new Set();
const pending = new Set();
let lastEventError = null;

export function currentUser() { return localStorage.getItem(USER_KEY) || ""; }

export function setCurrentUser(userId) {
  if (userId) localStorage.setItem(USER_KEY, userId);
  else localStorage.removeItem(USER_KEY);
  listeners.forEach((listener) => listener(userId));
}

export function onUserChange(listener) { listeners.add(listener); }

export function sessionId() {
  let id = sessionStorage.getItem(SESSION_KEY);
  if (!id) {
    id = `web-${crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2)}`;
    sessionStorage.setItem(SESSION_KEY, id);
  }
  return id;
}

function newEventId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

// type: view | click | add_to_cart | purchase | search; extra: {item_id, query, position}
export function track(type, extra = {}) {
  const event = { event_id: newEventId(), session_id: sessionId(), type, ts: new Date().toISOString(), ...extra };
  const user = currentUser();
  if (user) event.user_id = user;
  const sent = postEvents([event])
    .then(() => { lastEventError = null; })
    .catch((error) => { lastEventError = error; })
    .finally(() => pending.delete(sent));
  pending.add(sent);
  return sent;
}

// Resolves when every event sent so far is stored (or failed); returns the last failure.
export async function eventsSettled() {
  await Promise.all([...pending]);
  return lastEventError;
}
