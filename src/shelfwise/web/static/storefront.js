// Product listing: pages through GET /items.
const perPage = 24;
let page = 1;

function card(item) {
  const li = document.createElement("li");
  li.className = "card";
  const price = item.price == null ? "" : `${item.price.toFixed(2)} ${item.currency || ""}`;
  li.innerHTML = `<h2></h2><div class="category"></div><div class="brand"></div><div class="price"></div>`;
  li.querySelector("h2").textContent = item.title;
  li.querySelector(".category").textContent = item.category || "";
  li.querySelector(".brand").textContent = item.brand || "";
  li.querySelector(".price").textContent = price;
  if (!item.in_stock) li.insertAdjacentHTML("beforeend", `<div class="out">out of stock</div>`);
  return li;
}

async function show() {
  const response = await fetch(`/items?page=${page}&per_page=${perPage}`);
  const data = await response.json();
  document.getElementById("products").replaceChildren(...data.results.map(card));
  const pages = Math.max(1, Math.ceil(data.total / perPage));
  document.getElementById("total").textContent = `${data.total.toLocaleString()} products`;
  document.getElementById("page").textContent = `page ${page} of ${pages}`;
  document.getElementById("prev").disabled = page <= 1;
  document.getElementById("next").disabled = page >= pages;
}

document.getElementById("prev").onclick = () => { page -= 1; show(); };
document.getElementById("next").onclick = () => { page += 1; show(); };
show();
