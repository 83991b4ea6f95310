// Search results (GET /search): facets for category, brand and price with their counts, sort,
// pagination, and "showing results for" when the query was corrected. The state lives in the
// page address (#/search?q=…&brand=…&page=2), so back and forward work and a search can be shared.

import { apiGet } from "./api.js";
import { productGrid } from "./cards.js";
import { el, lastCategory, message } from "./dom.js";
import { currentUser, sessionId } from "./shopper.js";

const PER_PAGE = 24;
const SORTS = { relevance: "Relevance", popularity: "Popularity", price_asc: "Price: low to high", price_desc: "Price: high to low" };
const FACETS = [["category", "Category"], ["brand", "Brand"], ["price", "Price"]];

export function searchLink(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  return `#/search?${query}`;
}

// A price band's label -> {price_min, price_max}: "25-50", "500+", "<10", "under 10". A band holds
// its lower edge, not its upper one (25.00 is in "25-50"), and the API's bounds are inclusive.
export function priceRange(bucket) {
  const numbers = (bucket.match(/\d+(?:\.\d+)?/g) || []).map(Number);
  if (numbers.length >= 2) return { price_min: numbers[0], price_max: numbers[1] - 0.001 };
  if (numbers.length === 1) {
    if (/^\s*(<|under|below|up to)/i.test(bucket)) return { price_max: numbers[0] };
    return { price_min: numbers[0] };
  }
  return {};
}

function facetList(name, title, counts, state) {
  const chosen = state[name];
  const entries = Object.entries(counts || {});
  if (!entries.length) return null;
  return el(`section.facet`, { dataset: { facet: name } },
    el("h3", {}, title),
    el("ul", {}, entries.map(([value, count]) => {
      const selected = chosen === value;
      const next = { ...state, [name]: selected ? "" : value, page: "" };
      return el("li", {}, el("a.facet-value", { href: searchLink(next), "aria-pressed": String(selected), dataset: { value } },
        name === "category" ? lastCategory(value) || value : value, el("span.count", {}, ` (${count})`)));
    })));
}

function pager(state, total) {
  const page = Number(state.page || 1);
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  return el("nav.pager", { "aria-label": "pages" },
    page > 1 ? el("a#previous-page", { href: searchLink({ ...state, page: page - 1 }) }, "← Previous") : null,
    el("span", {}, `page ${page} of ${pages}`),
    page < pages ? el("a#next-page", { href: searchLink({ ...state, page: page + 1 }) }, "Next →") : null);
}

function sortSelect(state) {
  const select = el("select#sort", { "aria-label": "Sort by",
    onchange: () => { location.hash = searchLink({ ...state, sort: select.value, page: "" }); } },
  Object.entries(SORTS).map(([value, label]) => el("option", { value, selected: (state.sort || "relevance") === value }, label)));
  return el("label.sort", {}, "Sort by ", select);
}

function inStockToggle(state) {
  const box = el("input#in-stock", { type: "checkbox", checked: state.in_stock === "true",
    onchange: () => { location.hash = searchLink({ ...state, in_stock: box.checked ? "true" : "", page: "" }); } });
  return el("label.in-stock", {}, box, " In stock only");
}

function chosenFilters(state) {
  const chips = FACETS.filter(([name]) => state[name]).map(([name, title]) =>
    el("a.chip", { href: searchLink({ ...state, [name]: "", page: "" }), title: `remove the ${title.toLowerCase()} filter` },
      `${title}: ${name === "category" ? lastCategory(state[name]) : state[name]} ×`));
  return chips.length ? el("p.chips", {}, chips) : null;
}

// Price bands in price order ("0-25", "25-50", …, "500+"), whatever order the counts came in.
function byPrice(counts) {
  const low = (band) => Number((band.match(/\d+(?:\.\d+)?/) || [Infinity])[0]);
  return Object.fromEntries(Object.entries(counts || {}).sort(([a], [b]) => low(a) - low(b)));
}

// A text search (GET /search), or without words a category listing (GET /items?category=).
async function findProducts(state) {
  if (!state.q) {
    const page = await apiGet("/items", { category: state.category, page: state.page, per_page: PER_PAGE });
    return { ...page, corrected: null, facets: {} };
  }
  const data = await apiGet("/search", {
    q: state.q, category: state.category, brand: state.brand, ...(state.price ? priceRange(state.price) : {}),
    in_stock: state.in_stock, sort: state.sort, page: state.page, per_page: PER_PAGE,
    ...(currentUser() ? { user_id: currentUser() } : { session_id: sessionId() }), // personal re-ranking
  });
  return { ...data, facets: { ...data.facets, price: byPrice(data.facets?.price) } };
}

// state: {q, category, brand, price, sort, page} from the address.
export async function renderResults(main, state) {
  const data = await findProducts(state);
  const offset = (data.page - 1) * data.per_page;
  main.replaceChildren(el("div#search-results.results-layout", { dataset: { total: data.total } },
    el("aside.facets", {}, state.q ? inStockToggle(state) : null,
      FACETS.map(([name, title]) => facetList(name, title, data.facets?.[name], state))),
    el("section.results", {},
      el("div.results-bar", {},
        el("h2", {}, state.q ? `Results for “${state.q}”` : state.category || "All products"),
        el("span#result-count.subtle", {}, `${data.total.toLocaleString()} products`),
        state.q ? sortSelect(state) : null),
      data.corrected ? el("p#corrected.message.info", {}, "Showing results for ",
        el("a", { href: searchLink({ ...state, q: data.corrected, page: "" }) }, data.corrected)) : null,
      chosenFilters(state),
      data.results.length ? productGrid(data.results, { listName: "search", offset })
        : message("No products match. Try fewer words or remove a filter."),
      pager(state, data.total))));
}
