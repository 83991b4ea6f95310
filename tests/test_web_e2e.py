"""The storefront and the dashboard end to end: a real server on 127.0.0.1 and headless Chromium
(Debian's ``chromium``, driven by Playwright). Type a query, pick a suggestion, filter by a facet,
open a product, and see the shopper's recommendations change after the clicks; the dashboard
shows the model served, latency per endpoint and the evaluation reports; in ``serve`` mode the
pages ask for keys and the server hands none out."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from shelfwise.config import Settings
from shelfwise.datasets.demo import generate
from shelfwise.evaluation.report import write_report
from shelfwise.ingest import ingest_frame
from shelfwise.serving import create_app
from shelfwise.serving.routers.dashboard import _quantile, safe_report_file
from shelfwise.store import Store, events
from tests.serving_helpers import fill_shop, key, live_server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHOTO = ("data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='40' height='40'>"
         "<rect width='40' height='40' fill='teal'/></svg>")
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def new_page(browser, base_url: str):
    """A page with its own storage (no stored key or user), failing the test on a script error."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        assert not errors, f"script errors in the page: {errors}"
    finally:
        context.close()


def add_report(settings: Settings) -> None:
    """A benchmark run's output under the home's artifacts: metrics.json with a training history
    and the HTML report with its plots (not a model artifact: no `latest`)."""
    run = settings.artifacts / "bench-sasrec" / "run1"
    run.mkdir(parents=True)
    history = [{"epoch": e, "loss": 5.0 - 0.4 * e, "metrics": {"ndcg@10": 0.02 * e, "hr@10": 0.04 * e}} for e in range(5)]
    tables = {"valid": {"ndcg@10": 0.08, "hr@10": 0.16}, "test": {"ndcg@10": 0.07, "hr@10": 0.15}}
    (run / "metrics.json").write_text(json.dumps({**tables, "history": history, "model": "sasrec"}))
    write_report(run / "report.html", "sasrec on the demo shop", tables, history)
    (run / "model.safetensors").write_bytes(b"not served")


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    """The demo shop (small) served as `shelfwise demo` serves it: reads open, keyword search."""
    settings = Settings(home=tmp_path_factory.mktemp("web") / "home")
    store = Store.open(settings)
    shop = generate(n_items=300, n_users=80, n_events=4000, seed=0, progress=False)
    shop.items.loc[shop.items.item_id == "I00001", "image"] = PHOTO
    for kind, frame in (("items", shop.items), ("users", shop.users), ("events", shop.events)):
        ingest_frame(store, kind, frame)
    add_report(settings)
    app = create_app(settings, store, require_read_key=False, search_semantic=False)
    with live_server(app) as client:
        yield app, client
    store.close()


def shown_items(page, list_name: str) -> list[str]:
    return page.eval_on_selector_all(f"ul[data-list={list_name}] li.card", "cards => cards.map(c => c.dataset.itemId)")


def co_viewed(client, item_id: str) -> int:
    """How many of the item's similar items were seen next to it in the shop's sessions."""
    similar = client.get(f"/items/{item_id}/similar").json()["items"]
    return sum(s["reason"] == "co-occurrence" for s in similar)


def test_search_click_and_recommendations_change(browser, demo_site):
    app, client = demo_site
    with new_page(browser, str(client.base_url)) as page:
        page.goto("/")
        page.wait_for_selector("#recommendations li.card")
        user = page.get_attribute("#recommendations", "data-user")
        assert user == "U0001"  # the demo starts as the first user
        history_before = int(page.get_attribute("#recommendations", "data-history-length"))
        before = shown_items(page, "recommendations")
        assert len(before) == 12
        assert page.locator("#recommendations .why").count() == 12  # every item says why

        # Type a query: suggestions appear; pick one.
        page.click("#search-input")
        page.keyboard.type("kni", delay=40)
        page.wait_for_selector("#suggestions li.suggestion")
        suggestions = page.locator("#suggestions li.suggestion").all_inner_texts()
        assert "knife" in suggestions and all("kni" in s.lower() for s in suggestions), suggestions
        page.locator("#suggestions li.suggestion", has_text="knife").first.click()
        page.wait_for_selector("#search-results li.card")
        assert "#/search?q=" in page.url
        total = int(page.get_attribute("#search-results", "data-total"))
        assert total > 0
        assert "knife" in " ".join(page.locator("#search-results .card .title").all_inner_texts()).lower()

        # Apply a facet: only that brand is left, and the filter shows as a removable chip.
        brand_link = page.locator("[data-facet=brand] a.facet-value").first
        brand = brand_link.get_attribute("data-value")
        brand_link.click()
        page.wait_for_selector(".chips .chip")
        assert "brand=" in page.url
        metas = page.locator("#search-results .card .meta").all_inner_texts()
        assert metas and all(m.startswith(brand) for m in metas), (brand, metas)
        assert int(page.get_attribute("#search-results", "data-total")) <= total

        # Click a product: its page, with similar items. The product chosen is one shoppers have
        # viewed next to others (a product never seen in a session could not shape the list).
        clicked_id = max(shown_items(page, "search"), key=lambda item: co_viewed(client, item))
        card = page.locator(f"#search-results li.card[data-item-id='{clicked_id}']")
        clicked_title = card.locator(".title").inner_text()
        card.locator(".card-link").click()
        page.wait_for_selector(f"#product[data-item-id='{clicked_id}']")
        assert page.inner_text("#product-title") == clicked_title
        page.wait_for_selector("#similar li.card")
        assert clicked_id not in shown_items(page, "similar")

        # Back to the recommendations: they take the clicks into account.
        page.click("#back-to-recommendations")
        page.wait_for_function(f"Number(document.querySelector('#recommendations')?.dataset.historyLength) > {history_before}")
        after = shown_items(page, "recommendations")
        assert after != before
        assert "updated after your clicks" in page.inner_text("#recommendations .subtle")
        explanations = page.locator("#recommendations .why").all_inner_texts()
        assert any(f"Because you viewed {clicked_title}" in text for text in explanations), explanations

    # The page's events reached the store: the search, then the click (with its position in the
    # list) and the view of the product, for this user and this browser session.
    with app.state.store.engine.connect() as conn:
        stored = conn.execute(sa.select(events.c.type, events.c.item_id, events.c.query, events.c.position, events.c.session_id)
                              .where(events.c.user_id == user, events.c.session_id.like("web-%")).order_by(events.c.id)).all()
    assert [(e.type, e.item_id) for e in stored] == [("search", None), ("click", clicked_id), ("view", clicked_id)]
    assert stored[0].query == "knife" and stored[1].position >= 1


def test_anonymous_session_recommendations_follow_its_views(browser, demo_site):
    _, client = demo_site
    catalogue = [item["id"] for item in client.get("/items", params={"per_page": 40}).json()["results"]]
    product = max(catalogue, key=lambda item: co_viewed(client, item))
    with new_page(browser, str(client.base_url)) as page:
        page.goto("/")
        page.wait_for_selector("#recommendations[data-user=U0001] li.card")
        page.fill("#user-picker", "")  # nobody: this browser session shops anonymously
        page.click("#choose-user")
        page.wait_for_selector("#recommendations[data-user=''][data-history-length='0'] li.card")
        page.goto(f"/#/item/{product}")
        title = page.wait_for_selector("#product-title").inner_text()
        page.click("#back-to-recommendations")
        page.wait_for_selector("#recommendations[data-user=''][data-history-length='1'] li.card")
        explanations = page.locator("#recommendations .why").all_inner_texts()
        assert any(f"Because you viewed {title}" in text for text in explanations), explanations


def test_product_page_shows_the_photo(browser, demo_site):
    _, client = demo_site
    with new_page(browser, str(client.base_url)) as page:
        page.goto("/#/item/I00001")
        photo = page.wait_for_selector("#product img.photo.large")
        assert photo.get_attribute("src") == PHOTO
        assert page.locator(".breadcrumbs a").count() >= 2
        page.goto("/#/item/I00002")  # no photo: a placeholder tile
        page.wait_for_selector("#product[data-item-id=I00002] .photo.placeholder")


def test_dashboard_shows_model_latency_and_reports(browser, demo_site):
    app, client = demo_site
    for user in ("U0002", "U0003", "U0004"):
        assert client.get(f"/recommendations/{user}").status_code == 200
    with new_page(browser, str(client.base_url)) as page:
        page.goto("/dashboard?poll=1")
        page.wait_for_selector("#model-version")
        info = app.state.registry.current.info
        assert page.inner_text("#model-version") == f"{info.name} {info.version}"
        row = page.locator("#latency-table tr[data-route='GET /recommendations/{user_id}']")
        cells = row.locator("td").all_inner_texts()
        assert int(cells[2]) >= 3 and float(cells[-1]) > 0  # requests, p99 ms
        row.click()
        page.wait_for_selector("#latency-histogram figcaption:has-text('/recommendations/{user_id}')")
        assert page.locator("#latency-histogram rect.bar").count() > 0
        page.wait_for_selector("#traffic polyline[data-series='requests/s']")  # after two polls

        report = page.wait_for_selector(".report[data-path='bench-sasrec/run1']")
        assert "0.0700" in report.inner_text()  # test ndcg@10
        assert page.locator(".report[data-path='bench-sasrec/run1'] .curves svg polyline").count() >= 3
        files = page.locator(".report button.file").all_inner_texts()
        assert not any("safetensors" in f for f in files)
        page.locator(".report button.file", has_text="report.html").click()
        frame = page.wait_for_selector("iframe.report-frame")
        assert frame.get_attribute("sandbox") == ""  # the report runs no script with this origin
        assert "Learning curves" in frame.get_attribute("srcdoc")


def test_demo_config_hands_out_an_events_only_key(demo_site):
    _, client = demo_site
    config = client.get("/web/config").json()
    assert config["mode"] == "demo" and config["events_key"].startswith("sw_")
    assert client.get("/web/config").json()["events_key"] == config["events_key"]  # one per process
    events_key = {"Authorization": f"Bearer {config['events_key']}"}
    assert client.put("/admin/rules", headers=events_key, json={}).status_code == 403


@pytest.fixture
def serve_site(tmp_path):
    settings = Settings(home=tmp_path / "home")
    store = Store.open(settings)
    fill_shop(store)
    add_report(settings)
    with live_server(create_app(settings, store, search_semantic=False)) as client:
        yield store, client
    store.close()


def test_serve_mode_hands_out_no_key_and_guards_the_dashboard(serve_site):
    store, client = serve_site
    config = client.get("/web/config").json()
    assert config == {**config, "mode": "serve", "reads_need_key": True, "events_key": None}
    assert client.get("/dashboard/stats").status_code == 401
    assert client.get("/dashboard/reports", headers=key(store, "read")).status_code == 403
    admin = key(store, "admin")
    stats = client.get("/dashboard/stats", headers=admin).json()
    assert stats["mode"] == "serve" and "path" not in stats["models"]["serving"]
    report = client.get("/dashboard/files/bench-sasrec/run1/report.html", headers=admin)
    assert report.status_code == 200 and report.headers["content-security-policy"] == "sandbox"
    for bad in ("bench-sasrec/run1/model.safetensors", "%2e%2e/shelfwise.db", "bench-sasrec/../../shelfwise.db",
                "/etc/passwd", ".hidden/metrics.json"):
        assert client.get(f"/dashboard/files/{bad}", headers=admin).status_code == 404, bad


def test_serve_mode_pages_ask_for_keys(browser, serve_site):
    store, client = serve_site
    storefront_key = key(store, "read", "events")["Authorization"].removeprefix("Bearer ")
    with new_page(browser, str(client.base_url)) as page:
        page.goto("/")
        page.wait_for_selector(".key-form")
        page.fill("#api-key", storefront_key)
        page.click(".key-form button[type=submit]")
        page.fill("#user-picker", "u3")
        page.click("#choose-user")
        page.wait_for_selector("#recommendations[data-user=u3] li.card")
        clicked_id = page.locator("#recommendations li.card").first.get_attribute("data-item-id")
        page.locator("#recommendations li.card .card-link").first.click()
        page.wait_for_selector("#product-title")
        page.click("#back-to-recommendations")
        page.wait_for_selector("#recommendations li.card")
        assert not page.locator(".message.error").count()
        with store.engine.connect() as conn:  # posted with the stored key (it has the events scope)
            stored = conn.execute(sa.select(events.c.type, events.c.item_id).where(
                events.c.user_id == "u3", events.c.session_id.like("web-%")).order_by(events.c.id)).all()
        assert [tuple(e) for e in stored] == [("click", clicked_id), ("view", clicked_id)]

        # The storefront's key is not an admin key: the dashboard asks for one.
        page.goto("/dashboard")
        page.wait_for_selector(".key-form")
        page.fill("#api-key", key(store, "admin")["Authorization"].removeprefix("Bearer "))
        page.click(".key-form button[type=submit]")
        page.wait_for_selector("#latency-table")
        page.wait_for_selector(".report[data-path='bench-sasrec/run1']")


def test_latency_quantiles_follow_prometheus():
    bounds, cumulative = [0.01, 0.1, float("inf")], [50, 100, 100]
    assert _quantile(0.5, bounds, cumulative) == pytest.approx(0.01)
    assert _quantile(0.75, bounds, cumulative) == pytest.approx(0.055)
    assert _quantile(0.99, [0.01, float("inf")], [0, 10]) == pytest.approx(0.01)  # above the last bound
    assert _quantile(0.5, bounds, [0, 0, 0]) is None


def test_report_files_stay_inside_the_artifacts(tmp_path):
    root = tmp_path / "artifacts"
    (root / "m" / "v1").mkdir(parents=True)
    (root / "m" / "v1" / "metrics.json").write_text("{}")
    (tmp_path / "secret.json").write_text("{}")
    (root / "m" / "v1" / "link.json").symlink_to(tmp_path / "secret.json")
    assert safe_report_file(root, "m/v1/metrics.json") == (root / "m/v1/metrics.json").resolve()
    for bad in ("../secret.json", "m/v1/link.json", "m/../../secret.json", "/etc/passwd", ""):
        with pytest.raises(Exception) as caught:
            safe_report_file(root, bad)
        assert getattr(caught.value, "status_code", None) == 404, bad
