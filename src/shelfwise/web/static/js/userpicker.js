// The header's user picker: choose a demo shopper by id (GET /users?q=prefix suggests ids), or
// leave it empty to shop as an anonymous session.

import { apiGet } from "./api.js";
import { debounce, el } from "./dom.js";
import { currentUser, setCurrentUser } from "./shopper.js";

export function userPicker() {
  const options = el("datalist#user-options");
  const input = el("input#user-picker", {
    type: "search", list: "user-options", placeholder: "anonymous", value: currentUser(),
    autocomplete: "off", "aria-label": "Shop as user",
  });
  const status = el("span.picker-status", { role: "status" });

  const suggest = debounce(async () => {
    try {
      const page = await apiGet("/users", { q: input.value.trim(), per_page: 12 });
      options.replaceChildren(...page.results.map((u) => el("option", { value: u.user_id })));
    } catch { /* a key prompt is shown by the page */ }
  }, 150);

  async function choose(event) {
    event.preventDefault();
    const wanted = input.value.trim();
    status.textContent = "";
    if (!wanted) return setCurrentUser("");
    try {
      const page = await apiGet("/users", { q: wanted, per_page: 1 });
      if (page.results[0]?.user_id !== wanted) {
        status.textContent = `no user ${wanted}`;
        return;
      }
      setCurrentUser(wanted);
    } catch (error) {
      status.textContent = error.message;
    }
  }

  input.addEventListener("input", suggest);
  input.addEventListener("focus", suggest, { once: true });
  return el("form.user-picker", { onsubmit: choose },
    el("label", { for: "user-picker" }, "Shopping as"), input, options,
    el("button#choose-user", { type: "submit" }, "Go"), status);
}

// The first users, to start the demo as someone with a history.
export async function firstUser() {
  const page = await apiGet("/users", { per_page: 1 });
  return page.results[0]?.user_id || "";
}
