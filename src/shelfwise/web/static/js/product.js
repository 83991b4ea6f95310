// The product page: GET /items/{id} (photo, price, brand, category path, description,
// attributes), similar items (GET /items/{id}/similar), and an add-to-cart button. Opening the
// page records a `view` event; the cart button an `add_to_cart` event.

import { apiGet } from "./api.js";
import { productGrid } from "./cards.js";
import { el, formatPrice, message, productImage } from "./dom.js";
import { searchLink } from "./results.js";
import { track } from "./shopper.js";

function categoryPath(category) {
  if (!category) return null;
  const levels = category.split(" > ");
  return el("nav.breadcrumbs", { "aria-label": "category" }, levels.flatMap((level, i) => {
    const link = el("a", { href: searchLink({ category: levels.slice(0, i + 1).join(" > ") }) }, level);
    return i ? [" › ", link] : [link];
  }));
}

function attributeTable(attributes) {
  const rows = Object.entries(attributes || {});
  if (!rows.length) return null;
  return el("table.attributes", {}, rows.map(([name, value]) =>
    el("tr", {}, el("th", {}, name), el("td", {}, typeof value === "object" ? JSON.stringify(value) : value))));
}

async function similarSection(itemId) {
  try {
    const data = await apiGet(`/items/${encodeURIComponent(itemId)}/similar`, { k: 8 });
    return el("section#similar", {}, el("h2", {}, "Similar items"),
      data.items.length ? productGrid(data.items, { listName: "similar", showWhy: true }) : message("No similar items yet."));
  } catch (error) {
    return el("section#similar", {}, el("h2", {}, "Similar items"), message(error.message, "error"));
  }
}

export async function renderProduct(main, itemId) {
  const [item, similar] = await Promise.all([apiGet(`/items/${encodeURIComponent(itemId)}`), similarSection(itemId)]);
  track("view", { item_id: item.id });
  const cartStatus = el("span.cart-status", { role: "status" });
  const addToCart = el("button#add-to-cart", {
    type: "button", disabled: !item.in_stock,
    onclick: async () => {
      await track("add_to_cart", { item_id: item.id });
      cartStatus.textContent = "Added to your cart.";
    },
  }, item.in_stock ? "Add to cart" : "Out of stock");
  main.replaceChildren(
    el("article#product.product", { dataset: { itemId: item.id } },
      el("div.product-photo", {}, productImage(item, "large")),
      el("div.product-info", {},
        categoryPath(item.category),
        el("h2#product-title", {}, item.title),
        item.brand ? el("p.brand", {}, "by ", el("a", { href: searchLink({ q: item.brand, brand: item.brand }) }, item.brand)) : null,
        el("p.price.big", {}, formatPrice(item.price, item.currency)),
        el("p", {}, addToCart, " ", cartStatus),
        item.description ? el("p.description", {}, item.description) : null,
        attributeTable(item.attributes),
        el("p.subtle", {}, `item ${item.id}`),
        el("p", {}, el("a#back-to-recommendations", { href: "#/" }, "← Your recommendations")))),
    similar);
}
