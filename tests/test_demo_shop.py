"""The synthetic demo shop: deterministic, schema-true, consistent, and carrying learnable signal."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.datasets.demo import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, DemoShop, generate
from shelfwise.datasets.sequences import Sequences, leave_one_out
from shelfwise.recommenders.baselines import ItemTransitions, Popularity
from shelfwise.schema import Event, Item, User

N_ITEMS, N_USERS, N_EVENTS = 1500, 600, 40_000


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    return generate(n_items=N_ITEMS, n_users=N_USERS, n_events=N_EVENTS, seed=3)


def _plain(value):
    """A frame cell as the plain Python value a record would carry."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


# --- determinism and sizes -------------------------------------------------------------------


def test_same_seed_same_shop_other_seed_other_shop():
    a = generate(n_items=300, n_users=80, n_events=4000, seed=7)
    b = generate(n_items=300, n_users=80, n_events=4000, seed=7)
    c = generate(n_items=300, n_users=80, n_events=4000, seed=8)
    for name in ("items", "users", "events"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.items["title"].equals(c.items["title"])
    assert not a.events["item_id"].equals(c.events["item_id"])


def test_sizes_of_the_test_shop(shop):
    assert (len(shop.items), len(shop.users)) == (N_ITEMS, N_USERS)
    assert 0.85 * N_EVENTS <= len(shop.events) <= N_EVENTS


@pytest.mark.parametrize("sizes", [(300, 80, 4000), (20, 1, 60), (200, 500, 1000)])
def test_sizes_are_respected(sizes):
    n_items, n_users, n_events = sizes
    shop = generate(*sizes, seed=1)
    assert len(shop.items) == n_items
    assert len(shop.users) == n_users
    assert abs(len(shop.events) - n_events) <= 0.15 * n_events
    # the log is trimmed to whole sessions, so it lands just below the target
    assert len(shop.events) <= n_events


def test_a_tiny_log_keeps_at_least_one_session():
    shop = generate(n_items=20, n_users=3, n_events=2, seed=0)
    assert len(shop.events) >= 1 and shop.events["session_id"].nunique() == 1


def test_anonymous_sessions_keep_only_their_session_id():
    shop = generate(n_items=300, n_users=80, n_events=4000, seed=1, anonymous_share=0.25)
    ev = shop.events
    anonymous = ev.groupby("session_id")["user_id"].agg(lambda u: u.isna().mean())
    assert set(anonymous.unique()) <= {0.0, 1.0}  # whole sessions are logged out
    assert 0.1 < anonymous.mean() < 0.4
    assert ev["session_id"].notna().all() and ev["user_id"].dropna().isin(shop.users["user_id"]).all()
    assert (generate(n_items=300, n_users=80, n_events=4000, seed=1).events["user_id"].notna()).all()


def test_too_small_is_refused():
    with pytest.raises(ValueError, match="n_items"):
        generate(n_items=5)
    with pytest.raises(ValueError, match="n_users"):
        generate(n_users=0)
    with pytest.raises(ValueError, match="anonymous_share"):
        generate(anonymous_share=1.5)


# --- schema -----------------------------------------------------------------------------------


def test_columns_and_types_follow_the_schema(shop):
    assert list(shop.items.columns) == ITEM_COLUMNS == list(Item.model_fields)
    assert list(shop.users.columns) == USER_COLUMNS == list(User.model_fields)
    assert list(shop.events.columns) == EVENT_COLUMNS == list(Event.model_fields)
    for frame, column in [(shop.items, "created_at"), (shop.items, "updated_at"), (shop.users, "created_at"), (shop.events, "ts")]:
        assert str(frame[column].dtype) == "datetime64[ns, UTC]", column
    assert shop.items["price"].dtype == np.float64 and (shop.items["price"] > 0).all()
    assert shop.items["in_stock"].dtype == bool and shop.events["sponsored"].dtype == bool
    assert set(shop.items["currency"]) == {"EUR"}
    assert shop.items["image"].isna().all()
    assert (shop.items["updated_at"] >= shop.items["created_at"]).all()
    assert shop.events["ts"].is_monotonic_increasing


def test_rows_validate_as_records(shop):
    for model, frame in [(Item, shop.items.sample(300, random_state=0)), (User, shop.users), (Event, shop.events.sample(3000, random_state=0))]:
        for record in _records(frame):
            model.model_validate(record)


# --- consistency --------------------------------------------------------------------------------


def test_ids_are_unique_and_every_reference_exists(shop):
    items, users, events = shop.items, shop.users, shop.events
    assert items["item_id"].is_unique and users["user_id"].is_unique and events["event_id"].is_unique
    assert items["item_id"].str.fullmatch(r"I\d{5}").all() and users["user_id"].str.fullmatch(r"U\d{4}").all()
    assert events["user_id"].isin(users["user_id"]).all()
    assert events["session_id"].notna().all()
    has_item = events["item_id"].notna()
    assert events.loc[has_item, "item_id"].isin(items["item_id"]).all()
    assert events.groupby("session_id")["user_id"].nunique().max() == 1  # a session is one user's


def test_event_fields_by_type(shop):
    ev = shop.events
    assert set(ev["type"]) == {"view", "click", "add_to_cart", "purchase", "search", "impression"}
    search = ev["type"] == "search"
    assert ev.loc[search, "item_id"].isna().all() and ev.loc[~search, "item_id"].notna().all()
    queries = ev.loc[search, "query"]
    assert queries.notna().all() and (queries.str.len() > 0).all() and ev.loc[~search, "query"].isna().all()
    impressions = ev["type"] == "impression"
    assert ev.loc[impressions, "position"].notna().all() and (ev.loc[impressions, "position"] >= 0).all()
    assert ev.loc[ev["sponsored"], "type"].isin(["impression", "click"]).all()
    assert ev.loc[~(impressions | (ev["type"] == "click")), "position"].isna().all()
    counts = ev["type"].value_counts(normalize=True)
    assert counts["view"] > counts["add_to_cart"] > counts["purchase"] > 0
    assert 0.03 < counts["search"] < 0.2


def _first_time(ev: pd.DataFrame, kind: str) -> pd.Series:
    return ev[ev["type"] == kind].groupby(["session_id", "item_id"])["ts"].min().rename(kind)


def test_funnels_hold_within_sessions(shop):
    ev = shop.events
    purchases = ev[ev["type"] == "purchase"].join(_first_time(ev, "add_to_cart"), on=["session_id", "item_id"])
    assert len(purchases) > 100
    assert (purchases["add_to_cart"] < purchases["ts"]).all()  # NaT compares False: a cart is required
    carts = ev[ev["type"] == "add_to_cart"].join(_first_time(ev, "view"), on=["session_id", "item_id"])
    assert (carts["view"] < carts["ts"]).all()
    clicked = ev[ev["type"] == "click"][["session_id", "item_id"]].drop_duplicates()
    assert len(carts.merge(clicked, on=["session_id", "item_id"])) == len(carts)  # carted items were clicked
    # conversion falls along the funnel
    n = ev["type"].value_counts()
    assert n["view"] > n["click"] > n["add_to_cart"] > n["purchase"]


def test_sessions_of_a_user_do_not_overlap(shop):
    spans = shop.events.groupby("session_id").agg(user_id=("user_id", "first"), start=("ts", "min"), end=("ts", "max"))
    spans = spans.sort_values(["user_id", "start"])
    same_user = spans["user_id"].to_numpy()[1:] == spans["user_id"].to_numpy()[:-1]
    gaps = spans["start"].to_numpy()[1:] - spans["end"].to_numpy()[:-1]
    assert (gaps[same_user] > np.timedelta64(0, "s")).all()
    assert spans["end"].sub(spans["start"]).max() < pd.Timedelta(hours=8)
    first_seen = shop.events.groupby("user_id")["ts"].min()
    created = shop.users.set_index("user_id")["created_at"]
    assert (created[first_seen.index] < first_seen).all()


# --- realism ------------------------------------------------------------------------------------


def test_catalogue_looks_like_a_shop(shop):
    items = shop.items
    paths = items["category"].str.split(" > ")
    assert (paths.str.len() == 3).all()
    assert paths.str[0].nunique() >= 8 and items["category"].nunique() >= 40
    assert items.groupby("category")["brand"].nunique().min() >= 2
    assert items["title"].nunique() > 0.9 * len(items)
    assert all(b in t for b, t in zip(items["brand"], items["title"]))
    sentences = items["description"].str.count(r"\.(?: |$)")
    assert sentences.between(1, 3).all() and sentences.max() == 3
    assert 0.01 < (~items["in_stock"]).mean() < 0.1
    assert all(isinstance(a, dict) and "feature" in a and len(a) >= 2 for a in items["attributes"])
    assert sum("colour" in a for a in items["attributes"]) > 0.8 * len(items)
    # prices follow the category: sofas cost more than spatulas
    median = items.groupby(items["category"].str.split(" > ").str[-1])["price"].median()
    assert median["Sofas"] > 10 * median["Spatulas"]
    assert {"country", "segment"} <= set(shop.users["attributes"].iloc[0])


def test_sponsored_clicks_fall_with_position(shop):
    ev = shop.events
    shown = ev[(ev["type"] == "impression") & ev["sponsored"]]
    clicks = ev[(ev["type"] == "click") & ev["sponsored"]][["session_id", "item_id", "position"]].drop_duplicates()
    clicks["clicked"] = True
    shown = shown.merge(clicks, on=["session_id", "item_id", "position"], how="left")
    ctr = shown["clicked"].notna().groupby(shown["position"]).mean()
    assert 0.02 < ctr.mean() < 0.3
    assert ctr[0] > ctr[2]
    assert shown["item_id"].nunique() < 0.2 * len(shop.items)  # only advertised items get sponsored slots


def test_tastes_drift_over_time(shop):
    """A user's categories late in the window overlap less with their early ones than the same
    sessions shuffled in time would."""
    ev = shop.events[shop.events["type"] == "view"].merge(shop.items[["item_id", "category"]], on="item_id")
    t = (ev["ts"] - ev["ts"].min()) / (ev["ts"].max() - ev["ts"].min())
    ev = ev[(t < 1 / 3) | (t > 2 / 3)].assign(late=t > 2 / 3)
    sessions = ev.groupby("session_id").agg(user_id=("user_id", "first"), late=("late", "first"))

    def overlap(late: pd.Series) -> float:
        counts = ev.groupby([ev["user_id"], ev["session_id"].map(late), ev["category"]]).size()
        p = counts / counts.groupby(level=[0, 1]).transform("sum")
        p = p.unstack(level=1, fill_value=0.0)
        if list(p.columns) != [False, True]:
            return 1.0
        both = p.groupby(level=0).sum().pipe(lambda q: q[(q[False] > 0) & (q[True] > 0)])
        return float(np.minimum(p[False], p[True]).groupby(level=0).sum()[both.index].mean())

    real = overlap(sessions["late"])
    rng = np.random.default_rng(0)
    shuffled = []
    for _ in range(5):
        perm = sessions.groupby("user_id")["late"].transform(lambda s: s.to_numpy()[rng.permutation(len(s))])
        shuffled.append(overlap(perm))
    assert real < np.mean(shuffled) - 0.02


# --- learnable signal ---------------------------------------------------------------------------


def _hit_rate(scores: np.ndarray, histories: Sequences, targets: np.ndarray, k: int = 10) -> float:
    rows = np.repeat(np.arange(len(histories)), histories.lengths)
    scores[rows, histories.items] = -np.inf  # never recommend what the user has already seen
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return float((top == targets[:, None]).any(axis=1).mean())


def test_sequence_aware_baseline_beats_popularity(shop):
    views = shop.events[shop.events["type"] == "view"].sort_values(["user_id", "ts"], kind="stable")
    times = views["ts"].astype("int64").to_numpy() // 1_000_000
    seqs = Sequences.from_sorted_events(views["user_id"].to_numpy(), views["item_id"].to_numpy(), times)
    split = leave_one_out(seqs)
    assert len(split.test_target) > 0.8 * N_USERS
    transitions = _hit_rate(ItemTransitions().fit(split.train).score(split.test_history), split.test_history, split.test_target)
    popularity = _hit_rate(Popularity().fit(split.train).score(split.test_history), split.test_history, split.test_target)
    assert popularity > 10 / seqs.n_items  # popularity itself is better than chance
    assert transitions >= 1.5 * popularity and transitions > 0.15


_WORD = re.compile(r"[a-z0-9]+")


def _trigrams(text: str) -> list[str]:
    t = " " + " ".join(_WORD.findall(text.lower())) + " "
    return [t[i : i + 3] for i in range(len(t) - 2)]


def _tfidf(texts: list[str], vocab: dict[str, int]) -> sp.csr_matrix:
    rows, cols = [], []
    for r, text in enumerate(texts):
        for g in _trigrams(text):
            rows.append(r)
            cols.append(vocab.setdefault(g, len(vocab)))
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), 1 << 16))


def _searches_and_clicks(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each search's query and the item clicked next in the same session."""
    ev = events.sort_values(["session_id", "ts"], kind="stable").reset_index(drop=True)
    n = len(ev)
    nxt = np.where((ev["type"] == "click").to_numpy(), np.arange(n), n)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    search = np.flatnonzero((ev["type"] == "search").to_numpy())
    click = nxt[search]
    ok = click < n
    session = ev["session_id"].to_numpy()
    ok[ok] = session[click[ok]] == session[search[ok]]
    return ev["query"].to_numpy()[search[ok]], ev["item_id"].to_numpy()[click[ok]]


def test_queries_are_answerable_but_typed_by_people(shop):
    queries, clicked = _searches_and_clicks(shop.events)
    assert len(queries) > 1000
    items = shop.items
    vocab: dict[str, int] = {}
    docs = _tfidf((items["title"] + " " + items["category"]).tolist(), vocab)
    qs = _tfidf(list(queries), vocab)
    docs, qs = docs[:, : len(vocab)], qs[:, : len(vocab)]
    idf = np.log((docs.shape[0] + 1) / (np.asarray((docs > 0).sum(axis=0)).ravel() + 1)) + 1
    docs, qs = docs.multiply(idf).tocsr(), qs.multiply(idf).tocsr()
    scores = (qs @ docs.T).toarray() / np.sqrt(np.asarray(docs.multiply(docs).sum(axis=1)).ravel())[None, :]
    target = pd.Index(items["item_id"]).get_indexer(clicked)
    rank = (scores > scores[np.arange(len(target)), target][:, None]).sum(axis=1)
    top20 = float((rank < 20).mean())
    assert top20 >= 0.5 and top20 > 10 * 20 / len(items)

    # ... but not simply words of the title: typos, cut-off words, synonyms, plurals
    words = {iid: set(_WORD.findall(text.lower())) for iid, text in zip(items["item_id"], items["title"] + " " + items["category"])}
    inexact = np.mean([not set(_WORD.findall(q)) <= words[c] for q, c in zip(queries, clicked)])
    assert inexact >= 0.3
    assert all(q == q.lower() for q in queries)
    vocabulary = set().union(*words.values())
    unknown = [w for q in queries for w in _WORD.findall(q) if w not in vocabulary]
    assert len(unknown) > 0.05 * len(queries)  # misspelt, cut short or a synonym the catalogue lacks
    assert {"couch", "trainers", "tv"} & set(w for q in queries for w in _WORD.findall(q))


def test_progress_bar_and_default_arguments_work():
    shop = generate(n_items=100, n_users=10, n_events=500, seed=0, progress=True)
    assert repr(shop).startswith("DemoShop(100 items, 10 users, ")
