// The API key form. In `shelfwise serve` mode the server hands out no key: the person pastes one
// (kept in this browser's localStorage) and the page sends it with every call.

import { storedKey, storeKey } from "./api.js";
import { el } from "./dom.js";

// A banner asking for a key; `why` says which scopes are needed. Saving reloads the page.
export function keyForm(why) {
  const input = el("input#api-key", { type: "password", placeholder: "sw_…", autocomplete: "off", "aria-label": "API key" });
  const form = el("form.key-form", {
    onsubmit: (event) => {
      event.preventDefault();
      storeKey(input.value);
      location.reload();
    },
  },
  el("p", {}, why),
  input,
  el("button", { type: "submit" }, "Use this key"));
  if (storedKey()) {
    form.append(el("button.secondary", { type: "button", onclick: () => { storeKey(""); location.reload(); } }, "Forget the stored key"));
  }
  return form;
}
