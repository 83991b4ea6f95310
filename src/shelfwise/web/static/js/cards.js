// Product cards, used by every list: search results, recommendations, similar items.
// A click on a card records a `click` event for the shopper, then opens the product page.

import { el, formatPrice, lastCategory, productImage } from "./dom.js";
import { track } from "./shopper.js";

export const itemId = (item) => item.id ?? item.item_id;
export const productLink = (id) => `#/item/${encodeURIComponent(id)}`;

// Why a recommendation was made, in words; the history items named link to their pages.
export function explanation(item) {
  if (item.reason === "history" && item.because?.length) {
    const names = item.because.map((b) => el("a.because-item", { href: productLink(b.item_id) }, b.title || b.item_id));
    const joined = names.flatMap((name, i) => (i ? [i === names.length - 1 ? " and " : ", ", name] : [name]));
    return el("p.why", { dataset: { reason: item.reason } }, "Because you viewed ", ...joined);
  }
  const words = {
    popular: "Popular in the shop",
    pinned: "Featured by the shop",
    "co-occurrence": "Often viewed together",
    "same category": "More from this category",
    history: "Related to what you viewed",
  };
  return item.reason ? el("p.why", { dataset: { reason: item.reason } }, words[item.reason] || item.reason) : null;
}

export function productCard(item, { position, listName, showWhy = false, matchedTerms } = {}) {
  const id = itemId(item);
  const link = el("a.card-link", {
    href: productLink(id),
    onclick: () => { track("click", { item_id: id, ...(position !== undefined ? { position } : {}) }); },
  }, productImage(item), el("h3.title", {}, item.title || id));
  const card = el("li.card", { dataset: { itemId: id, list: listName } },
    link,
    el("p.meta", {}, [item.brand, lastCategory(item.category)].filter(Boolean).join(" · ")),
    el("p.price", {}, formatPrice(item.price, item.currency)),
    item.in_stock === false ? el("p.out-of-stock", {}, "out of stock") : null,
    matchedTerms?.length ? el("p.matched", {}, "matched: ", matchedTerms.join(", ")) : null,
    showWhy ? explanation(item) : null,
    item.pinned ? el("span.badge", {}, "featured") : null);
  return card;
}

export function productGrid(items, options = {}) {
  return el("ul.grid", { dataset: { list: options.listName } },
    items.map((item, i) => productCard(item, { ...options, position: i + 1 + (options.offset || 0),
      matchedTerms: item.explanation?.matched_terms })));
}
