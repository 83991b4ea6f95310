// Small DOM helpers shared by the pages. Text always goes in through textContent, never as HTML.

// el("a#top.card", {href: "#/"}, "text", child) -> <a id="top" class="card" href="#/">text child</a>
export function el(selector, attributes = {}, ...children) {
  const [tagAndId, ...classes] = selector.split(".");
  const [tag, id] = tagAndId.split("#");
  const node = document.createElement(tag);
  if (id) node.id = id;
  if (classes.length) node.className = classes.join(" ");
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function formatPrice(price, currency) {
  if (price === null || price === undefined) return "";
  return `${Number(price).toFixed(2)}${currency ? ` ${currency}` : ""}`;
}

export function lastCategory(category) {
  return category ? category.split(" > ").at(-1) : "";
}

// Only URLs a browser can load become <img>: http(s), site paths and inline data images.
function loadableImage(image) {
  return typeof image === "string" && /^(https?:\/\/|\/|data:image\/)/i.test(image);
}

function hue(text) {
  let h = 0;
  for (const ch of text || "") h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

// The product photo, or a coloured tile with the category's initials when there is none.
export function productImage(item, size = "small") {
  if (loadableImage(item.image)) {
    return el(`img.photo.${size}`, { src: item.image, alt: item.title || "", loading: "lazy" });
  }
  const name = lastCategory(item.category) || item.title || "?";
  const initials = name.split(/\s+/).slice(0, 2).map((w) => w[0]).join("").toUpperCase();
  const tile = el(`div.photo.placeholder.${size}`, { "aria-hidden": "true" }, initials);
  tile.style.background = `hsl(${hue(name)} 45% 85%)`;
  return tile;
}

export function message(text, kind = "info") {
  return el(`p.message.${kind}`, { role: kind === "error" ? "alert" : "status" }, text);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
