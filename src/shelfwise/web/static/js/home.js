// The storefront home: "Recommended for you" for the chosen user (GET /recommendations/{user})
// or, for an anonymous shopper, this browser session (GET /sessions/{id}/recommendations).
// Each item says why it was picked. Items that were not in the last list shown are marked
// "new", so the effect of a click is visible.

import { apiGet } from "./api.js";
import { productGrid, itemId } from "./cards.js";
import { el, message } from "./dom.js";
import { currentUser, eventsSettled, sessionId } from "./shopper.js";

const RECOMMENDATIONS = 12;
const lastShown = new Map(); // shopper -> item ids of the list shown before

async function recommendations(user) {
  if (user) return apiGet(`/recommendations/${encodeURIComponent(user)}`, { k: RECOMMENDATIONS });
  return apiGet(`/sessions/${encodeURIComponent(sessionId())}/recommendations`, { k: RECOMMENDATIONS });
}

export async function renderHome(main) {
  const user = currentUser();
  const eventError = await eventsSettled(); // clicks first, so they shape this list
  const data = await recommendations(user);
  const shopper = user || "session";
  const ids = data.items.map(itemId);
  const before = lastShown.get(shopper);
  lastShown.set(shopper, ids);

  const grid = productGrid(data.items, { listName: "recommendations", showWhy: true });
  if (before) {
    const seen = new Set(before);
    grid.querySelectorAll("li.card").forEach((card) => {
      if (!seen.has(card.dataset.itemId)) card.prepend(el("span.badge.new", {}, "new"));
    });
  }
  const changed = before && before.join() !== ids.join();
  main.replaceChildren(
    el("section#recommendations", { dataset: { user: user, historyLength: data.history_length } },
      el("h2", {}, user ? `Recommended for you, ${user}` : "Recommended for you"),
      el("p.subtle", {},
        `${data.history_length} items in ${user ? "your" : "this session's"} history · model ${data.model.name} ${data.model.version}`,
        changed ? " · updated after your clicks" : ""),
      eventError ? message(`Your last click was not recorded: ${eventError.message}`, "error") : null,
      data.items.length ? grid : message("Nothing to recommend yet: search and open a few products.")));
}
