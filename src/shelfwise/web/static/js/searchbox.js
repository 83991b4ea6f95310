// The header's search box with autocomplete (GET /autocomplete?q=&k=): suggestions appear as
// you type; arrow keys move through them, Enter or a click searches.

import { apiGet } from "./api.js";
import { debounce, el } from "./dom.js";

export function searchBox(onSearch) {
  const input = el("input#search-input", {
    type: "search", name: "q", placeholder: "Search products", autocomplete: "off",
    role: "combobox", "aria-autocomplete": "list", "aria-controls": "suggestions", "aria-expanded": "false",
  });
  const list = el("ul#suggestions.suggestions", { role: "listbox", hidden: true });
  let active = -1;
  let latestRequest = 0;

  function close() {
    list.hidden = true;
    list.replaceChildren();
    active = -1;
    input.setAttribute("aria-expanded", "false");
  }

  function highlight(index) {
    const options = [...list.children];
    active = (index + options.length) % options.length;
    options.forEach((option, i) => option.setAttribute("aria-selected", String(i === active)));
  }

  function submit(query) {
    close();
    input.value = query;
    if (query.trim()) onSearch(query.trim());
  }

  const suggest = debounce(async () => {
    const query = input.value;
    if (!query.trim()) return close();
    const request = ++latestRequest;
    let suggestions = [];
    try {
      suggestions = (await apiGet("/autocomplete", { q: query, k: 8 })).suggestions;
    } catch { return close(); }
    if (request !== latestRequest) return; // an older answer arriving late
    if (!suggestions.length) return close();
    list.replaceChildren(...suggestions.map((text) => el("li.suggestion", {
      role: "option", "aria-selected": "false",
      onmousedown: (event) => { event.preventDefault(); submit(text); },
    }, text)));
    list.hidden = false;
    active = -1;
    input.setAttribute("aria-expanded", "true");
  }, 120);

  input.addEventListener("input", suggest);
  input.addEventListener("blur", () => setTimeout(close, 100));
  input.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    if (event.key === "ArrowDown") { event.preventDefault(); highlight(active + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); }
    else if (event.key === "Escape") close();
    else if (event.key === "Enter" && active >= 0) { event.preventDefault(); submit(list.children[active].textContent); }
  });

  const form = el("form.search-box", { role: "search", onsubmit: (event) => { event.preventDefault(); submit(input.value); } },
    input, list, el("button#search-button", { type: "submit" }, "Search"));
  form.setQuery = (query) => { input.value = query || ""; };
  return form;
}
