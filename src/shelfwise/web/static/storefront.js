// The storefront: a header (search with autocomplete, the shopper picker) and three views chosen
// by the page address: #/ (recommendations), #/search?… (results and facets), #/item/ID (a product).

import { ApiError, pageConfig, storedKey, useKeySlot } from "./js/api.js";
import { el, message } from "./js/dom.js";
import { renderHome } from "./js/home.js";
import { keyForm } from "./js/keys.js";
import { renderProduct } from "./js/product.js";
import { renderResults, searchLink } from "./js/results.js";
import { searchBox } from "./js/searchbox.js";
import { currentUser, onUserChange, setCurrentUser, track } from "./js/shopper.js";
import { firstUser, userPicker } from "./js/userpicker.js";

useKeySlot("storefront");
const main = document.getElementById("main");
const search = searchBox((query) => {
  track("search", { query });
  location.hash = searchLink({ q: query });
});

function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = Object.fromEntries(new URLSearchParams(query));
  if (path === "/search") return { view: "search", params };
  const item = path.match(/^\/item\/(.+)$/);
  if (item) return { view: "item", id: decodeURIComponent(item[1]) };
  return { view: "home" };
}

let rendering = 0;
async function show() {
  const current = route();
  const request = ++rendering;
  document.body.dataset.view = current.view;
  search.setQuery(current.view === "search" ? current.params.q : "");
  main.setAttribute("aria-busy", "true");
  try {
    if (current.view === "search") await renderResults(main, current.params);
    else if (current.view === "item") await renderProduct(main, current.id);
    else await renderHome(main);
    if (current.view !== "home") window.scrollTo(0, 0);
  } catch (error) {
    if (request !== rendering) return;
    if (error instanceof ApiError && error.needsKey) {
      main.replaceChildren(keyForm(storedKey()
        ? `The stored API key was refused (${error.message}). Paste a key with the read and events scopes.`
        : "This shop's API needs a key. Paste one with the read and events scopes (shelfwise keys create --scope read --scope events)."));
    } else {
      main.replaceChildren(message(error.message, "error"));
    }
  } finally {
    if (request === rendering) main.removeAttribute("aria-busy");
  }
}

async function start() {
  const config = await pageConfig();
  const banner = config.mode === "demo"
    ? "Demo shop: reads are open, your clicks are posted with a demo key that may only post events."
    : storedKey() ? "" : "Calls need an API key.";
  document.getElementById("header").append(
    el("a.logo", { href: "#/" }, "shelfwise"),
    search,
    userPicker(),
    el("nav.header-links", {}, el("a", { href: "/dashboard" }, "Dashboard")));
  if (banner) document.getElementById("mode-banner").textContent = banner;
  if (config.mode === "demo" && !currentUser() && !localStorage.getItem("shelfwise.user.chosen")) {
    localStorage.setItem("shelfwise.user.chosen", "1");
    try { setCurrentUser(await firstUser()); } catch { /* shown by the view */ }
    document.getElementById("user-picker").value = currentUser();
  }
  onUserChange(() => { if (route().view === "home") show(); else location.hash = "#/"; });
  window.addEventListener("hashchange", show);
  show();
}

start();
