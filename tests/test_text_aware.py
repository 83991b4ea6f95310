"""Text-aware item representations (recommenders/item_repr.py): items scored through their text,
so an item never seen in training still gets a sensible score; and the benchmark option behind them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from shelfwise.config import Settings
from shelfwise.datasets.sequences import Sequences
from shelfwise.recommenders.baselines import ItemTransitions
from shelfwise.recommenders.item_repr import ITEM_REPRS, set_item_text
from shelfwise.recommenders.neural import SequentialRecommender
from shelfwise.recommenders.registry import build_model
from shelfwise.training.loop import TrainConfig

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TOPICS, PER_TOPIC = 5, 8  # items 1..40; item k belongs to topic (k - 1) // PER_TOPIC


def topic_catalogue(seed: int = 0) -> np.ndarray:
    """Unit text vectors [41, 384]: each item = its topic's direction plus a little noise (row 0 = padding)."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(TOPICS, 384))
    vectors = np.repeat(topics, PER_TOPIC, axis=0) + 0.3 * rng.normal(size=(TOPICS * PER_TOPIC, 384))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.vstack([np.zeros((1, 384)), vectors]).astype(np.float32)


def topic_sessions(n: int, cold: set[int], seed: int = 0) -> Sequences:
    """Users who stay within one topic, never touching the ``cold`` items."""
    rng = np.random.default_rng(seed)
    lists = []
    for u in range(n):
        topic = u % TOPICS
        warm = [k for k in range(topic * PER_TOPIC + 1, (topic + 1) * PER_TOPIC + 1) if k not in cold]
        lists.append(list(rng.choice(warm, size=6)))
    return Sequences.from_lists(lists, n_items=TOPICS * PER_TOPIC)


def tiny(model: str = "sasrec", item_repr: str = "text", epochs: int = 1, item_text=None) -> SequentialRecommender:
    # The network alone (no transitions blended in): these tests are about its item representation.
    return SequentialRecommender(model=model, model_config={"item_repr": item_repr, "hidden": 32, "max_len": 8},
                                 train_config=TrainConfig(epochs=epochs, batch_size=32, lr=5e-3, warmup_steps=5, progress=False),
                                 item_text=item_text, transitions_weight=0)


@pytest.mark.parametrize("model", ["sasrec", "gru4rec"])
@pytest.mark.parametrize("item_repr", ITEM_REPRS)
def test_every_item_repr_builds_trains_and_scores(model, item_repr):
    vectors = topic_catalogue()
    rec = tiny(model, item_repr, item_text=None if item_repr == "id" else vectors).fit(topic_sessions(40, cold=set()))
    scores = rec.score(topic_sessions(3, cold=set(), seed=1))
    assert scores.shape == (3, TOPICS * PER_TOPIC + 1) and np.isneginf(scores[:, 0]).all() and np.isfinite(scores[:, 1:]).all()
    assert rec.result_.epochs_run == 1 and np.isfinite(rec.result_.history[0]["loss"])


def test_gated_fusion_trains():
    rec = tiny(item_text=topic_catalogue(), item_repr="text+id")
    rec.model_config["fusion"] = "gated"
    rec.fit(topic_sessions(40, cold=set()))
    assert rec.network_.item_embedding.gate is not None and np.isfinite(rec.result_.history[0]["loss"])


def test_id_dropout_drops_id_parts_in_training_only():
    rec = tiny(item_text=topic_catalogue(), item_repr="text+id").fit(topic_sessions(40, cold=set()))  # the default dropout
    table = rec.network_.item_embedding
    table.eval()
    assert torch.equal(table.weight, table.weight)  # deterministic at inference
    table.train()
    torch.manual_seed(1)
    assert not torch.equal(table.weight, table.weight)  # a fresh draw of dropped ID parts per batch
    table.id_dropout = 0.0  # model.id_dropout=0: every item keeps its ID part in training too
    assert torch.equal(table.weight, table.weight)


def test_near_identical_texts_get_near_identical_scores():
    vectors = topic_catalogue()
    vectors[2] = vectors[1] + 1e-4  # item 2's text is item 1's, but for a hair
    rec = tiny(item_text=vectors).fit(topic_sessions(40, cold={2}))  # and item 2 never occurs in training
    scores = rec.score(topic_sessions(10, cold=set(), seed=3))
    spread = scores[:, 1:].max(1) - scores[:, 1:].min(1)
    assert np.all(np.abs(scores[:, 1] - scores[:, 2]) < 1e-2 * spread)


def test_cold_item_similar_in_text_to_the_target_beats_random():
    """One item per topic never occurs in training; a user of that topic should still find it near the top."""
    cold = {t * PER_TOPIC + 1 for t in range(TOPICS)}
    vectors = topic_catalogue()
    rec = tiny(item_text=vectors, epochs=8).fit(topic_sessions(200, cold=cold))
    histories = topic_sessions(50, cold=cold, seed=2)
    scores = torch.from_numpy(rec.score(histories))
    targets = np.array([(u % TOPICS) * PER_TOPIC + 1 for u in range(50)])  # the user's topic's cold item
    ranks = (scores > scores[torch.arange(50), targets][:, None]).sum(1)
    hr10 = float((ranks < 10).float().mean())
    assert hr10 >= 0.8, hr10  # random: 10 / 40 = 0.25

    # The ID-only model has nothing to go on for those items.
    id_rec = tiny(item_repr="id", epochs=8).fit(topic_sessions(200, cold=cold))
    id_scores = torch.from_numpy(id_rec.score(histories))
    id_ranks = (id_scores > id_scores[torch.arange(50), targets][:, None]).sum(1)
    assert float((id_ranks < 10).float().mean()) < hr10


def test_the_model_keeps_the_text_vectors_centred_and_unit():
    """A common direction shared by every item is removed: what is left tells the items apart."""
    vectors = topic_catalogue()
    vectors[1:] += 2.0 * np.eye(384, dtype=np.float32)[0]  # every item leans the same way
    model = build_model("sasrec", TOPICS * PER_TOPIC, item_repr="text")
    set_item_text(model, vectors)
    stored = model.item_embedding.text_vectors.numpy()
    assert np.allclose(stored[0], 0) and np.allclose(np.linalg.norm(stored[1:], axis=1), 1, atol=1e-5)
    assert abs(float(stored[1:].mean(0) @ stored[1:].mean(0))) < 0.05  # the shared direction is gone
    same_topic, other_topic = stored[1] @ stored[2], stored[1] @ stored[PER_TOPIC + 1]
    assert same_topic > 0.5 > other_topic


def test_text_plus_id_scores_cold_items_by_text_only():
    rec = tiny(item_text=topic_catalogue(), item_repr="text+id").fit(topic_sessions(40, cold={3}))
    table = rec.network_.item_embedding
    assert table.has_id[3].item() == 0 and table.has_id[4].item() == 1
    text_only = table.text_projection(table.text_vectors[3])
    assert torch.allclose(table.weight[3], text_only)


def test_cold_items_are_negatives_only_when_asked():
    from shelfwise.recommenders.losses import LossConfig
    from shelfwise.training.sequential import NextItemTask

    train = topic_sessions(40, cold={3, 11})
    for item_repr, cold_negatives, absent in (("text", False, [3, 11]), ("text", True, None), ("id", False, None)):
        model = build_model("sasrec", TOPICS * PER_TOPIC, item_repr=item_repr, hidden=8, max_len=8)
        task = NextItemTask(model, train, loss=LossConfig(cold_negatives=cold_negatives))
        found = None if task.absent is None else np.flatnonzero(task.absent.numpy()).tolist()
        assert found == (None if absent is None else [0, *absent])  # 0, padding, never occurs either


def test_text_model_saves_and_loads_without_the_encoder(tmp_path):
    rec = tiny(item_text=topic_catalogue(), item_repr="text+id").fit(topic_sessions(40, cold={3}))
    art = rec.save(tmp_path / "m")
    loaded = SequentialRecommender.load(art.path)
    histories = topic_sessions(4, cold=set(), seed=5)
    assert loaded.model_config["item_repr"] == "text+id"
    np.testing.assert_allclose(loaded.score(histories), rec.score(histories), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("item_repr", ["text", "text+id"])
def test_items_added_after_training_are_scored_by_their_text(item_repr, tmp_path):
    vectors = topic_catalogue()
    rec = tiny(item_text=vectors, item_repr=item_repr).fit(topic_sessions(40, cold={3}))
    rec.transitions_weight_, rec.transitions_ = 0.3, ItemTransitions().fit(topic_sessions(40, cold={3}))
    rec.item_ids_ = np.array([""] + [f"i{k}" for k in range(1, 41)], dtype=object)
    histories = topic_sessions(4, cold=set(), seed=5)
    before = rec.score(histories)
    rec.add_items(["late-twin-of-3", "late-twin-of-20"], vectors[[3, 20]])
    assert rec.network_.config.n_items == 42 and list(rec.item_ids_[-2:]) == ["late-twin-of-3", "late-twin-of-20"]
    after = rec.score(Sequences.from_lists([histories[k].tolist() for k in range(4)], n_items=42))
    assert after.shape == (4, 43)
    # Item 3 never occurred in training, so it has no ID part either: a new item with its text scores exactly as it does.
    np.testing.assert_allclose(after[:, 41], after[:, 3], rtol=1e-5)
    if item_repr == "text":  # no ID parts at all: the twin of a warm item scores as the network scores that item
        network = rec.network_
        with torch.no_grad():
            assert torch.allclose(network.item_embedding.weight[42], network.item_embedding.weight[20], atol=1e-6)
    # The items that were there keep their scores' order (the blend's softmax now spreads over two more items).
    assert (np.argsort(-after[:, 1:41], axis=1)[:, :10] == np.argsort(-before[:, 1:41], axis=1)[:, :10]).mean() > 0.9
    with pytest.raises(ValueError, match="already in the model"):
        rec.add_items(["i5"], vectors[[5]])
    with pytest.raises(ValueError, match="2 new items but 1 text vectors"):
        rec.add_items(["a", "b"], vectors[[5]])


def test_models_saved_before_the_text_mean_was_kept_still_load():
    network = build_model("sasrec", 40, item_repr="text", hidden=8)
    state = {k: v for k, v in network.state_dict().items() if k != "item_embedding.text_mean"}
    fresh = build_model("sasrec", 40, item_repr="text", hidden=8)
    fresh.load_state_dict(state)  # strict: only the mean may be missing, and it reads as zero
    assert not fresh.item_embedding.text_mean.any()


def test_id_models_cannot_add_items_by_text():
    rec = tiny(item_repr="id").fit(topic_sessions(20, cold=set()))
    rec.item_ids_ = np.array([""] + [f"i{k}" for k in range(1, 41)], dtype=object)
    with pytest.raises(ValueError, match="no item text to score new items by"):
        rec.add_items(["new"], topic_catalogue()[[1]])


def test_id_model_is_unchanged_by_the_option():
    """The default item table is the plain nn.Embedding of before: same parameter names, same seeded weights."""
    torch.manual_seed(0)
    a = build_model("sasrec", 30)
    torch.manual_seed(0)
    b = build_model("sasrec", 30, item_repr="id")
    assert isinstance(a.item_embedding, torch.nn.Embedding) and "item_embedding.weight" in a.state_dict()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_bad_item_repr_settings_are_clear_errors():
    with pytest.raises(ValueError, match="unknown item_repr 'words'"):
        build_model("sasrec", 10, item_repr="words")
    with pytest.raises(ValueError, match="unknown fusion"):
        build_model("sasrec", 10, item_repr="text+id", fusion="concat")
    with pytest.raises(ValueError, match="needs item text vectors"):
        set_item_text(build_model("sasrec", 10, item_repr="text"), None)
    with pytest.raises(ValueError, match=r"shape \(5, 384\)"):
        set_item_text(build_model("sasrec", 10, item_repr="text"), np.zeros((5, 384)))


def write_recbole(folder):
    """A tiny RecBole text folder: 6 items in two kinds (pans, knives), users who stay with one kind."""
    folder.mkdir()
    names = ["red frying pan", "steel frying pan", "cast iron frying pan", "chef knife", "paring knife", "bread knife"]
    (folder / "Toy.item2index").write_text("".join(f"A{i}\t{i}\n" for i in range(6)))
    (folder / "Toy.text").write_text("item_id:token\ttext:token_seq\n" + "".join(f"A{i}\t{t}\n" for i, t in enumerate(names)))
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    valid, test = [], []
    for u in range(12):
        kind = [0, 1, 2] if u % 2 == 0 else [3, 4, 5]
        seq = [kind[(u + j) % 3] for j in range(4)]
        valid.append(f"{u}\t{' '.join(map(str, seq[:2]))}\t{seq[2]}\n")
        test.append(f"{u}\t{' '.join(map(str, seq[:3]))}\t{seq[3]}\n")
    (folder / "Toy.valid.inter").write_text(header + "".join(valid))
    (folder / "Toy.test.inter").write_text(header + "".join(test))


def bench(tmp_path, *args):
    from shelfwise.commands.recommend import sequential

    return CliRunner().invoke(sequential, ["--out", str(tmp_path / "run"), "--epochs", "1", "--threads", "1",
                                           "--set", "model.hidden=16", *args], obj=Settings(home=tmp_path / "home", quiet=True))


def test_bench_sequential_on_a_recbole_text_folder(tmp_path):
    write_recbole(tmp_path / "toy")
    result = bench(tmp_path, "--data", str(tmp_path / "toy"), "--format", "recbole-text", "--item-repr", "text+id",
                   "--cold-items", "0.34")
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["config"]["model_config"]["item_repr"] == "text+id" and m["protocol"]["cold_items"]["held_out"] == 2
    assert m["test_cold"]["cases"] + m["test_warm"]["cases"] == 12 and m["test_cold"]["random_hr@10"] == pytest.approx(10 / 6)
    assert (tmp_path / "run" / "test_sequences.txt").read_text().splitlines()[0].split()[0] == "0"
    assert list((tmp_path / "home" / "cache").glob("item-text-*.npy"))  # encoded once, reused by the next run


@pytest.mark.parametrize("args,message", [
    (["--format", "recbole-text"], "is not a folder"),
    (["--item-repr", "text"], "needs item text"),
    (["--item-text", "lora"], "needs --item-repr text or text+id"),
    (["--set", "blend.rerank=maybe"], "rerank must be true or false"),
    (["--set", "blend.weight=0.1"], "there are blend.transitions_weight"),
])
def test_bench_sequential_bad_inputs(tmp_path, args, message):
    data = tmp_path / "users.txt"
    data.write_text("1 1 2 3 4\n2 2 3 4 1\n")
    result = bench(tmp_path, "--data", str(data), *args)
    assert result.exit_code != 0 and message in result.output


@pytest.mark.slow
def test_bench_sequential_with_a_lora_adapted_text_encoder(tmp_path):
    write_recbole(tmp_path / "toy")
    result = bench(tmp_path, "--data", str(tmp_path / "toy"), "--format", "recbole-text", "--item-repr", "text",
                   "--item-text", "lora", "--item-text-steps", "3")
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["item_text"]["encoder"] == "lora" and m["item_text"]["tuning"]["steps"] == 3
    assert list((tmp_path / "home" / "cache").glob("item-text-encoder-lora-*"))
    # The saved model names the adapted encoder, so items added after training are encoded by it too.
    rec = SequentialRecommender.load(tmp_path / "run" / "model")
    assert Path(rec.item_text_encoder).parent.name.startswith("item-text-encoder-lora-") and Path(rec.item_text_encoder).is_dir()


def test_bench_sequential_recbole_folder_with_missing_file(tmp_path):
    write_recbole(tmp_path / "toy")
    (tmp_path / "toy" / "Toy.test.inter").unlink()
    result = bench(tmp_path, "--data", str(tmp_path / "toy"), "--format", "recbole-text")
    assert result.exit_code != 0 and "Toy.test.inter" in result.output


def test_bench_sequential_user_file_still_works(tmp_path):
    data = tmp_path / "users.txt"
    data.write_text("".join(f"{u} {' '.join(str((u + j) % 5 + 1) for j in range(5))}\n" for u in range(1, 11)))
    result = bench(tmp_path, "--data", str(data))
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["format"] == "user-sequences" and m["config"]["model_config"]["item_repr"] == "id"
    assert m["test_warm"]["cases"] == 10 and not (tmp_path / "run" / "test_sequences.txt").exists()


def test_follow_pairs_are_consecutive_different_items_with_text():
    from shelfwise.recommenders.text_tuning import follow_pairs

    texts = ["pan", "knife", "", "board"]  # item 3 has no text
    pairs = follow_pairs(Sequences.from_lists([[1, 2, 2, 4], [4, 1, 3, 1], [2]], n_items=4), texts)
    assert sorted(zip(pairs["query"], pairs["item_id"])) == [("board", "1"), ("knife", "4"), ("pan", "2")]
    assert (pairs["relevance"] == 3).all()


@pytest.mark.slow
def test_lora_adapted_item_vectors_bring_items_that_follow_each_other_closer(tmp_path):
    """Shoppers always go from a kind of pan to a kind of spice: after adapting, the encoder puts
    a pan's text nearer the spice that followed it than the pretrained encoder did."""
    from shelfwise.recommenders.item_repr import encode_item_texts
    from shelfwise.recommenders.text_tuning import adapted_item_vectors

    texts = ["cast iron frying pan", "steel saucepan", "nonstick wok", "smoked paprika", "ground cumin", "black peppercorns"]
    pairs = [[1 + k, 4 + k] for k in range(3)] * 20
    train = Sequences.from_lists(pairs, n_items=6)
    valid = Sequences.from_lists([[1], [2], [3]], n_items=6)
    frozen = encode_item_texts(texts, tmp_path / "cache", progress=False)
    adapted, metrics = adapted_item_vectors(texts, train, valid, np.array([4, 5, 6]), tmp_path / "cache", max_steps=30)
    assert adapted.shape == frozen.shape and np.allclose(adapted[0], 0)

    def pan_to_its_spice(vectors):
        return float(np.mean([vectors[1 + k] @ vectors[4 + k] for k in range(3)]))

    assert pan_to_its_spice(adapted) > pan_to_its_spice(frozen) + 0.02
    assert metrics["valid_ndcg@10"] >= metrics["valid_ndcg@10_zero_shot"] and metrics["trainable_fraction"] < 0.02
    again, _ = adapted_item_vectors(texts, train, valid, np.array([4, 5, 6]), tmp_path / "cache", max_steps=30)
    assert np.array_equal(again, adapted)  # the adapted encoder and its vectors come from the cache
    assert len(list((tmp_path / "cache").glob("item-text-encoder-lora-*"))) == 1


def _kitchen_shop(store) -> None:
    """Four pans, four knives, four garden hoses, and a new knife and a new hose no one has touched.
    Shoppers go pan -> knife -> hose, each of the 20 four times; a newcomer has just looked at a pan. Every colour word of the new items
    is also on items of other kinds, so only what the item is can tell them apart."""
    import pandas as pd

    from shelfwise.ingest import ingest_frame

    kinds = {"P": ("frying pan", "Kitchen > Pans", ["red", "blue", "green", "white"]),
             "K": ("chef knife", "Kitchen > Knives", ["red", "blue", "green", "black"]),
             "H": ("garden hose", "Garden", ["blue", "green", "black", "white"])}
    rows = [{"item_id": f"{k}{i}", "title": f"{colour.title()} {name}", "category": category, "price": 10.0 + i}
            for k, (name, category, colours) in kinds.items() for i, colour in enumerate(colours)]
    rows += [{"item_id": "K-NEW", "title": "White chef knife", "category": "Kitchen > Knives", "price": 30.0},
             {"item_id": "H-NEW", "title": "Red garden hose", "category": "Garden", "price": 30.0}]
    events, t0 = [], pd.Timestamp("2024-01-01", tz="UTC")
    for s in range(80):
        for step, item in enumerate([f"P{s % 4}", f"K{(s // 4) % 4}", f"H{(s // 16) % 4}"]):
            events.append({"event_id": f"e{s}-{step}", "user_id": f"u{s % 20}", "session_id": f"s{s}", "item_id": item, "type": "view",
                           "ts": (t0 + pd.Timedelta(minutes=10 * s + step)).isoformat()})
    events.append({"event_id": "e-last", "user_id": "newcomer", "session_id": "s-last", "item_id": "P1", "type": "view",
                   "ts": (t0 + pd.Timedelta(days=1)).isoformat()})  # has just looked at a pan
    ingest_frame(store, "items", pd.DataFrame(rows))
    ingest_frame(store, "events", pd.DataFrame(events))


@pytest.mark.slow
def test_train_recommender_with_item_text_recommends_items_no_one_has_touched(tmp_path):
    from shelfwise.commands.recommend import recommender
    from shelfwise.serving import create_app
    from shelfwise.store import Store
    from tests.serving_helpers import key, live_server

    settings = Settings(home=tmp_path / "home", quiet=True)
    store = Store.open(settings)
    _kitchen_shop(store)
    args = ["--model", "sasrec", "--item-repr", "text", "--epochs", "30", "--threads", "1", "--set", "blend.transitions_weight=0",
            "--set", "model.hidden=32", "--set", "model.max_len=8", "--set", "train.warmup_steps=5", "--set", "train.batch_size=4"]
    result = CliRunner().invoke(recommender, args, obj=settings)
    assert result.exit_code == 0, result.output
    assert "2 catalogue items without events are recommended by their text" in result.output
    rec = SequentialRecommender.load(settings.artifacts / "sasrec")
    index = {item: i for i, item in enumerate(rec.item_ids_)}
    assert {"K-NEW", "H-NEW"} <= set(index)  # every catalogue item has a row, touched or not
    after_a_pan = rec.score(Sequences.from_lists([[index["P1"]]], n_items=len(index) - 1))[0]
    not_knives = [i for item, i in index.items() if i and not item.startswith("K")]
    assert after_a_pan[index["K-NEW"]] > after_a_pan[not_knives].max()
    # Served over HTTP: after the newcomer's pan, the new knife is among the six recommendations (the shop's
    # default diversity lets one hose in among the knives).
    with live_server(create_app(settings, store)) as client:
        client.headers.update(key(store, "read"))
        recs = client.get("/recommendations/newcomer", params={"k": 6}).json()
    assert recs["model"]["name"] == "sasrec" and recs["history_length"] == 1
    assert "K-NEW" in [item["item_id"] for item in recs["items"]]
    # A knife that joins the catalogue after training is recommended as soon as the API loads the model.
    import pandas as pd

    from shelfwise.ingest import ingest_frame

    ingest_frame(store, "items", pd.DataFrame([{"item_id": "K-LATE", "title": "Blue chef knife", "category": "Kitchen > Knives"}]))
    with live_server(create_app(settings, store)) as client:
        client.headers.update(key(store, "read"))
        recs = client.get("/recommendations/newcomer", params={"k": 7}).json()
    store.close()
    assert {"K-NEW", "K-LATE"} <= {item["item_id"] for item in recs["items"]}


def test_train_recommender_item_text_bad_inputs(tmp_path):
    from shelfwise.commands.recommend import recommender

    settings = Settings(home=tmp_path / "home", quiet=True)
    for args, message in ((["--model", "bert4rec", "--item-repr", "text"], "text-aware models: ['gru4rec', 'lstm', 'sasrec']"),
                          (["--item-text", "lora"], "needs --item-repr text or text+id")):
        result = CliRunner().invoke(recommender, args, obj=settings)
        assert result.exit_code == 2 and message in result.output, result.output
