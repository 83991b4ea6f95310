"""Alignment, fusion, the multimodal artifact and multimodal search, on tiny data made here.

The heads train for one or two epochs on random features: these tests check shapes, the artifact
round trip and missing-modality handling; the benchmark measures quality."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from shelfwise.multimodal.alignment import AlignmentConfig, Aligner, retrieval_recall
from shelfwise.multimodal.fusion import FUSIONS, FusionConfig, ItemFuser
from shelfwise.multimodal.labels import UNKNOWN, build_vocab, encode_labels
from shelfwise.multimodal.model import MultimodalModel
from shelfwise.training.loop import TrainConfig

torch.set_num_threads(1)
TYPES = ["Shirts", "Jeans", "Watches"]
COLOURS = ["Black", "Blue", "Red"]
VOCABS = {
    "articleType": TYPES,
    "baseColour": COLOURS,
    "gender": ["Men", "Women"],
    "season": ["Summer", "Winter"],
    "usage": ["Casual", "Formal"],
}
TINY = dict(dim=16, image_hidden=32, text_hidden=32, extra_text_batch=8)


def _train_config(epochs=2):
    return TrainConfig(epochs=epochs, batch_size=8, warmup_steps=1, patience=0, progress=False, metric="selection")


def _pairs(n=24, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, 2, 1280)).astype(np.float32)
    texts = rng.normal(size=(n, 384)).astype(np.float32)
    labels = {
        "articleType": [TYPES[i % 3] for i in range(n)],
        "baseColour": [COLOURS[i % 3] for i in range(n)],
        "gender": [["Men", "Women"][i % 2] for i in range(n)],
    }
    return images, texts, labels


def _aligner(epochs=2, **overrides) -> Aligner:
    images, texts, labels = _pairs()
    aligner = Aligner(AlignmentConfig(**{**TINY, **overrides}), _train_config(epochs), vocabs=VOCABS)
    extra = np.random.default_rng(1).normal(size=(10, 384)).astype(np.float32)
    valid = (images[:6, 0], texts[:6], {k: v[:6] for k, v in labels.items()})
    return aligner.fit(images, texts, labels, extra_texts=extra, extra_labels={"articleType": ["Jeans"] * 10}, valid=valid)


def test_labels_vocab_and_unknown_codes():
    assert build_vocab(["b", "a", ""], ["c", "a"]) == ["a", "b", "c"]
    assert encode_labels(["b", "zzz", None], ["a", "b"]).tolist() == [1, UNKNOWN, UNKNOWN]


def test_retrieval_recall_counts_the_own_row():
    identity = np.eye(4, dtype=np.float32)
    assert retrieval_recall(identity, identity) == {1: 1.0, 5: 1.0, 10: 1.0}
    shuffled = identity[[1, 0, 2, 3]]
    assert retrieval_recall(identity, shuffled, ks=(1,))[1] == 0.5


def test_aligner_embeds_both_sides_into_one_unit_space():
    aligner = _aligner()
    images, texts, _ = _pairs(5, seed=3)
    image_emb, text_emb = aligner.embed_images(images[:, 0]), aligner.embed_texts(texts)
    # Retrieval vectors: the 16-d embedding plus one slot per class of each attribute head.
    assert aligner.dim == 16 + len(TYPES) + len(COLOURS) + 2
    assert image_emb.shape == text_emb.shape == (5, aligner.dim)
    assert np.allclose(np.linalg.norm(image_emb, axis=1), 1, atol=1e-5)
    plain = aligner.embed_images(images[:, 0], retrieval=False)
    assert plain.shape == (5, 16) and set(aligner.predict_attribute(plain, "articleType")) <= set(TYPES)
    assert aligner.result.epochs_run == 2 and "r@10" in aligner.result.best_metrics
    assert set(aligner.config.retrieval_weights) == {"articleType", "baseColour", "gender"}


def test_aligner_without_validation_keeps_the_last_epoch_and_a_linear_variant_works():
    images, texts, labels = _pairs()
    aligner = Aligner(AlignmentConfig(**{**TINY, "image_hidden": 0, "text_hidden": 0, "attribute_weight": 0.0}), _train_config(1), vocabs=VOCABS)
    aligner.fit(images[:, 0], texts, labels)
    assert aligner.result.best_epoch == 0
    assert aligner.embed_texts(texts[:2], retrieval=False).shape == (2, 16)
    assert aligner.config.retrieval_weights == {}  # nothing held out to choose them on


def test_photo_probes_read_attributes_and_score_items_by_log_probability(tmp_path):
    """Standardised features + a linear probe per attribute: the probe learns what a photo shows
    (here: the article type is written into 20 of its features, far above their usual scale),
    item vectors carry log-probabilities and query vectors probabilities, and all of it survives
    the artifact round trip."""
    rng = np.random.default_rng(0)
    n = 60
    types = [TYPES[i % 3] for i in range(n)]
    images = rng.normal(size=(n, 2, 64)).astype(np.float32)
    for i, t in enumerate(types):
        images[i, :, TYPES.index(t) * 20:(TYPES.index(t) + 1) * 20] += 50.0
    texts = rng.normal(size=(n, 384)).astype(np.float32)
    labels = {"articleType": types, "baseColour": [COLOURS[i % 3] for i in range(n)], "gender": [["Men", "Women"][i % 2] for i in range(n)]}
    config = AlignmentConfig(**TINY, image_dim=64, standardize_images=True, photo_probe_l2=1e-3)
    aligner = Aligner(config, _train_config(1), vocabs=VOCABS).fit(images, texts, labels, valid=(images[:9, 0], texts[:9], {k: v[:9] for k, v in labels.items()}))
    unseen = rng.normal(size=(6, 64)).astype(np.float32)
    for i in range(6):
        unseen[i, (i % 3) * 20:(i % 3 + 1) * 20] += 50.0
    assert list(aligner.photo_attributes(unseen, "articleType")) == [TYPES[i % 3] for i in range(6)]
    items, queries = aligner.embed_images(unseen, side="item"), aligner.embed_images(unseen, side="query")
    type_slots = slice(16, 16 + len(TYPES))
    assert (items[:, type_slots] <= 0).all() and np.allclose(queries[:, type_slots].sum(1), aligner.config.retrieval_weights["articleType"], atol=1e-5)
    with pytest.raises(ValueError, match="side must be"):
        aligner.embed_texts(texts[:1], side="both")

    MultimodalModel(aligner, image_config={"pooled_blocks": [5, 6]}).save(tmp_path / "model")
    loaded = MultimodalModel.load(tmp_path / "model").aligner
    assert np.allclose(loaded.embed_images(unseen, side="item"), items, atol=1e-5)
    assert list(loaded.photo_attributes(unseen, "articleType")) == list(aligner.photo_attributes(unseen, "articleType"))


def test_text_probes_learn_from_names_without_photos_and_feed_the_query_vectors(tmp_path):
    """A name's article type is written into 20 of its features. The paired names are all shirts
    and jeans; only names without a photo show watches, so reading "Watches" from an unseen name
    proves the probe learned from the extra names. Query vectors carry the probe's probabilities
    (times the weight), items its log-probabilities, and both survive the artifact round trip."""
    rng = np.random.default_rng(0)

    def names(types):
        x = rng.normal(size=(len(types), 384)).astype(np.float32)
        for i, t in enumerate(types):
            x[i, TYPES.index(t) * 20:(TYPES.index(t) + 1) * 20] += 5.0
        return x

    paired = [TYPES[i % 2] for i in range(40)]
    images = rng.normal(size=(40, 2, 64)).astype(np.float32)
    labels = {"articleType": paired, "baseColour": [COLOURS[i % 3] for i in range(40)], "gender": [["Men", "Women"][i % 2] for i in range(40)]}
    extra_types = [TYPES[i % 3] for i in range(60)]
    config = AlignmentConfig(**TINY, image_dim=64, standardize_images=True, photo_probe_l2=1e-3, text_probe_l2=1e-4,
                             retrieval_weights={"articleType": 0.1})
    aligner = Aligner(config, _train_config(1), vocabs=VOCABS).fit(
        images, names(paired), labels, extra_texts=names(extra_types), extra_labels={"articleType": extra_types})
    unseen_types = [TYPES[i % 3] for i in range(9)]
    unseen = names(unseen_types)
    assert list(aligner.text_attributes(unseen, "articleType")) == unseen_types
    queries, items = aligner.embed_texts(unseen, side="query"), aligner.embed_texts(unseen, side="item")
    type_slots = slice(16, 16 + len(TYPES))
    assert np.allclose(queries[:, type_slots].sum(1), 0.1, atol=1e-5)
    assert (queries[:, type_slots].argmax(1) == [TYPES.index(t) for t in unseen_types]).all()
    assert (items[:, type_slots] <= 0).all()

    MultimodalModel(aligner, image_config={"pooled_blocks": [5, 6]}).save(tmp_path / "model")
    loaded = MultimodalModel.load(tmp_path / "model").aligner
    assert np.allclose(loaded.embed_texts(unseen, side="query"), queries, atol=1e-5)
    assert list(loaded.text_attributes(unseen, "articleType")) == unseen_types


def test_cross_fitted_weights_are_chosen_on_held_out_training_pairs():
    """Photos and names show their article type and nothing else that pairs them (the rest is
    noise), so only the attribute term can rank a name's photo above the other types' photos: the
    weights cross-fitted on the training pairs must give it weight, and the aligner keeps them."""
    rng = np.random.default_rng(0)
    n = 60
    types = [TYPES[i % 3] for i in range(n)]
    images = rng.normal(size=(n, 1, 64)).astype(np.float32)
    texts = rng.normal(size=(n, 384)).astype(np.float32)
    for i, t in enumerate(types):
        images[i, :, TYPES.index(t) * 20:(TYPES.index(t) + 1) * 20] += 50.0
        texts[i, TYPES.index(t) * 20:(TYPES.index(t) + 1) * 20] += 5.0
    labels = {"articleType": types, "baseColour": list(rng.choice(COLOURS, n)), "gender": list(rng.choice(["Men", "Women"], n))}
    config = AlignmentConfig(**TINY, image_dim=64, standardize_images=True, photo_probe_l2=1e-3, text_probe_l2=1e-4)
    aligner = Aligner(config, _train_config(1), vocabs=VOCABS).fit(images, texts, labels)
    weights = aligner.cross_fit_weights(images, texts, labels, folds=3)
    assert weights["articleType"] > 0 and aligner.config.retrieval_weights == weights
    with pytest.raises(ValueError, match="at least 2 folds"):
        aligner.cross_fit_weights(images[:5], texts[:5], labels, folds=3)


def test_photo_probes_need_standardised_features():
    with pytest.raises(ValueError, match="needs standardize_images"):
        Aligner(AlignmentConfig(**TINY, photo_probe_l2=1e-3), vocabs=VOCABS)


@pytest.mark.parametrize("method", sorted(FUSIONS))
def test_fusion_methods_handle_missing_modalities(method):
    images, texts, labels = _pairs()
    attributes = {**labels, "season": ["Summer"] * 24, "usage": ["Casual"] * 24}
    fuser = ItemFuser(FusionConfig(method=method, dim=16, attention_heads=2), _train_config(1), vocabs=VOCABS)
    fuser.train_config.metric = "accuracy"
    inputs = fuser.inputs(images[:, 0], texts, attributes)
    fuser.fit(inputs, labels, valid=(inputs.rows(slice(0, 6)), {k: v[:6] for k, v in labels.items()}))
    for subset in (fuser.inputs(images[:4, 0], None), fuser.inputs(None, texts[:4]), fuser.inputs(None, None, {k: v[:4] for k, v in attributes.items()}),
                   fuser.inputs(images[:4, 0], texts[:4], image_ok=np.array([True, False, True, False]))):
        vectors = fuser.transform(subset)
        assert vectors.shape == (4, 16) and np.isfinite(vectors).all()
    # An item with nothing at all still gets a finite vector (the gate and attention must not give NaN).
    nothing = fuser.inputs(images[:2, 0], texts[:2], image_ok=np.zeros(2, bool), text_ok=np.zeros(2, bool))
    assert np.isfinite(fuser.transform(nothing)).all()
    accuracy = fuser.accuracy(inputs, labels)
    assert set(accuracy) == {"articleType", "baseColour"} and all(0 <= v <= 1 for v in accuracy.values())


def test_unknown_fusion_method_is_a_clear_error():
    fuser = ItemFuser(FusionConfig(method="nope"), vocabs=VOCABS)
    with pytest.raises(ValueError, match="unknown fusion 'nope'"):
        images, texts, labels = _pairs()
        inputs = fuser.inputs(images[:, 0], texts)
        fuser.fit(inputs, labels, valid=(inputs, labels))


def test_model_artifact_round_trip(tmp_path):
    aligner = _aligner(epochs=1)
    images, texts, labels = _pairs()
    fuser = ItemFuser(FusionConfig(method="gated", dim=16), _train_config(1), vocabs=VOCABS)
    fuser.train_config.metric = "accuracy"
    inputs = fuser.inputs(images[:, 0], texts)
    fuser.fit(inputs, labels, valid=(inputs, labels))
    artifact = MultimodalModel(aligner, fuser, image_config={"colour_bins": 5}).save(tmp_path / "model", metrics={"note": 1})
    assert (artifact.path / "model.safetensors").is_file() and not list(artifact.path.glob("*.pkl"))
    loaded = MultimodalModel.load(tmp_path / "model")
    assert np.allclose(loaded.aligner.embed_texts(texts[:3]), aligner.embed_texts(texts[:3]), atol=1e-6)
    assert np.allclose(loaded.fuser.transform(inputs.rows(slice(0, 3))), fuser.transform(inputs.rows(slice(0, 3))), atol=1e-6)
    assert loaded.aligner.vocabs["articleType"] == TYPES
    assert loaded.image_config == {"colour_bins": 5} and loaded.aligner.config.retrieval_weights == aligner.config.retrieval_weights


def test_aligner_fine_tunes_the_image_tail_and_the_artifact_serves_it(tmp_path):
    """Photos as cached trunk activations (+ colour histograms): the backbone's tail trains with the
    projections, and the saved model's image encoder carries the tuned weights."""
    from shelfwise.encoders.image import EMBEDDING_DIM, BackboneTail, load_backbone
    from shelfwise.multimodal.alignment import TrunkInputs

    _, texts, labels = _pairs()
    rng = np.random.default_rng(2)
    # What the trunk gives at 64 px entering the last block: [n, views, 192, 2, 2].
    photos = TrunkInputs(rng.normal(size=(24, 2, 192, 2, 2)).astype(np.float16), rng.random((24, 2, 8)).astype(np.float32))
    pretrained = load_backbone().state_dict()
    aligner = Aligner(AlignmentConfig(**TINY, image_dim=EMBEDDING_DIM + 8), _train_config(2), vocabs=VOCABS,
                      image_tail=BackboneTail(load_backbone(), 15, lr_scale=0.5))
    aligner.fit(photos, texts, labels, valid=(photos.take(slice(0, 6), 0), texts[:6], {k: v[:6] for k, v in labels.items()}))
    weights = aligner.image_backbone_weights()
    assert not torch.equal(weights["_conv_head.weight"], pretrained["_conv_head.weight"])
    assert torch.equal(weights["_blocks.14._project_conv.weight"], pretrained["_blocks.14._project_conv.weight"])  # the trunk is frozen
    assert not any(k.startswith("image_tail.") for k in aligner.state_dict())  # the backbone is saved with the image encoder
    assert aligner.embed_images(photos.take(slice(0, 3), 0)).shape == (3, aligner.dim)

    MultimodalModel(aligner, image_config={"image_size": 64, "colour_bins": 2}, image_weights=weights).save(tmp_path / "model")
    loaded = MultimodalModel.load(tmp_path / "model")
    encoder = loaded.make_image_encoder()
    assert encoder.config.image_size == 64 and torch.equal(encoder.model.state_dict()["_conv_head.weight"], weights["_conv_head.weight"])
    features = encoder.encode([Image.new("RGB", (60, 80), (200, 20, 20))])
    assert np.allclose(loaded.aligner.embed_images(features), aligner.embed_images(features), atol=1e-6)
    assert MultimodalModel.load(tmp_path / "model").image_weights is not None
    assert MultimodalModel(_aligner(epochs=1)).save(tmp_path / "frozen") and MultimodalModel.load(tmp_path / "frozen").image_weights is None


def test_loading_something_else_is_a_clear_error(tmp_path):
    from shelfwise import artifacts

    artifacts.save(tmp_path / "other", {"w": torch.zeros(1)}, {"kind": "text-encoder"})
    with pytest.raises(ValueError, match="not a multimodal model"):
        MultimodalModel.load(tmp_path / "other")


def _photo_bytes(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 80), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """A CSV catalogue: photo-only, name-only, both, a truncated photo and an empty row; and a tiny model."""
    folder = tmp_path_factory.mktemp("catalogue")
    (folder / "photos").mkdir()
    for name, colour in {"red": (200, 20, 20), "blue": (20, 20, 200), "green": (20, 180, 20)}.items():
        (folder / "photos" / f"{name}.jpg").write_bytes(_photo_bytes(colour))
    (folder / "photos" / "broken.jpg").write_bytes(_photo_bytes((0, 0, 0))[:200])
    (folder / "products.csv").write_text(
        "product_id,title,image\n"
        "p1,,photos/red.jpg\n"
        "p2,,photos/blue.jpg\n"
        "p3,Green summer dress,photos/green.jpg\n"
        "p4,Black leather belt,\n"
        "p5,,photos/broken.jpg\n"
        "p6,,\n"
    )
    (folder / "photos_only.csv").write_text("product_id,image\np1,photos/red.jpg\np2,photos/blue.jpg\n")
    MultimodalModel(_aligner(epochs=1)).save(folder / "model")
    return folder


def test_multimodal_search_indexes_what_each_item_has(catalogue):
    from shelfwise.encoders.image import ImageReadError
    from shelfwise.multimodal.search import MultimodalSearch, read_catalogue

    items = read_catalogue(catalogue / "products.csv")
    engine = MultimodalSearch(MultimodalModel.load(catalogue / "model")).fit(items)
    assert len(engine.index) == 4
    assert set(engine.skipped) == {"p5", "p6"} and "image" in engine.skipped["p5"] and engine.skipped["p6"] == "no title and no image"
    pages = engine.search_text(["red shirt", "belt"], top=3)
    assert [len(p.hits) for p in pages] == [3, 3]
    by_photo = engine.search_images([catalogue / "photos" / "red.jpg"], top=4)[0]
    assert by_photo.hits[0].item_id == "p1"  # the photo itself is its own nearest neighbour
    with pytest.raises(ImageReadError):
        engine.search_images([catalogue / "photos" / "broken.jpg"])


def test_multimodal_search_with_photo_probes_finds_the_photo_by_its_colour(catalogue, tmp_path):
    """A model with pooled blocks and photo probes, trained on real encoder features of the three
    colour photos: search by photo and by text run through query vs item vectors."""
    from shelfwise.encoders.image import ImageEncoder, ImageEncoderConfig
    from shelfwise.multimodal.search import MultimodalSearch, read_catalogue

    image_config = {"image_size": 64, "pooled_blocks": [15], "colour_bins": 2}
    encoder = ImageEncoder(ImageEncoderConfig(**image_config))
    colours = {"Red": (200, 20, 20), "Blue": (20, 20, 200), "Green": (20, 180, 20)}
    rng = np.random.default_rng(0)
    photos, names = [], []
    for i in range(18):  # six shades of each colour
        colour = list(colours)[i % 3]
        shade = np.clip(np.array(colours[colour]) + rng.integers(-30, 30, 3), 0, 255)
        photos.append(_photo_bytes(tuple(int(v) for v in shade)))
        names.append(colour)
    features = encoder.encode(photos)
    texts = rng.normal(size=(18, 384)).astype(np.float32)
    config = AlignmentConfig(**TINY, image_dim=encoder.dim, standardize_images=True, photo_probe_l2=1e-3,
                             retrieval_weights={"baseColour": 0.2})
    vocabs = {**VOCABS, "baseColour": ["Blue", "Green", "Red"]}
    aligner = Aligner(config, _train_config(1), vocabs=vocabs).fit(features, texts, {"baseColour": names})
    MultimodalModel(aligner, image_config=image_config).save(tmp_path / "model")

    engine = MultimodalSearch(MultimodalModel.load(tmp_path / "model")).fit(read_catalogue(catalogue / "products.csv"))
    assert len(engine.index) == 4 and set(engine.skipped) == {"p5", "p6"}
    assert list(aligner.photo_attributes(encoder.encode([catalogue / "photos" / "blue.jpg"]), "baseColour")) == ["Blue"]
    assert engine.search_images([catalogue / "photos" / "red.jpg"], top=4)[0].hits[0].item_id == "p1"
    assert engine.search_images([catalogue / "photos" / "blue.jpg"], top=4)[0].hits[0].item_id == "p2"
    assert [len(p.hits) for p in engine.search_text(["red shirt"], top=3)] == [3]


def test_read_catalogue_errors(tmp_path):
    from shelfwise.multimodal.search import read_catalogue

    (tmp_path / "a.csv").write_text("product_id,price\n1,2\n")
    with pytest.raises(ValueError, match="needs a title or an image"):
        read_catalogue(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("product_id,title\n1,x\n1,y\n")
    with pytest.raises(ValueError, match="line 3: duplicate item id '1'"):
        read_catalogue(tmp_path / "b.csv")


def test_search_run_through_a_multimodal_model_by_text_and_by_photo(catalogue, tmp_path):
    """`shelfwise search run --model OUT/model` on a catalogue of photos only (no titles): text
    queries find products by their photos, and --image finds them by a photo."""
    import csv

    from click.testing import CliRunner

    from shelfwise.commands.multimodal import BENCH, SEARCH, multimodal
    from shelfwise.commands.search import search
    from shelfwise.config import Settings

    assert BENCH == [multimodal] and [c.name for c in SEARCH] == ["voice"]
    settings = Settings(home=tmp_path / "home", quiet=True)
    (tmp_path / "queries.txt").write_text("red top\n\nred top\nblue jeans\n")
    out = tmp_path / "run.tsv"
    args = ["run", "--products", str(catalogue / "photos_only.csv"), "--model", str(catalogue / "model"), "--queries", str(tmp_path / "queries.txt"),
            "--image", str(catalogue / "photos" / "blue.jpg"), "--top", "2", "--out", str(out)]
    result = CliRunner().invoke(search, args, obj=settings, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(out.open(), delimiter="\t"))
    assert rows[0] == ["query", "product_id", "rank", "score"]
    assert [r[0] for r in rows[1:]] == ["red top"] * 2 + ["blue jeans"] * 2 + [str(catalogue / "photos" / "blue.jpg")] * 2
    assert rows[-2][1] == "p2"
    missing = CliRunner().invoke(search, ["run", "--products", str(catalogue / "photos_only.csv"), "--model", str(catalogue / "model"),
                                          "--out", str(out)], obj=settings)
    assert missing.exit_code != 0 and "--queries" in missing.output
    no_model = CliRunner().invoke(search, ["run", "--products", str(catalogue / "photos_only.csv"), "--image", str(catalogue / "photos" / "blue.jpg"),
                                           "--out", str(out)], obj=settings)
    assert no_model.exit_code != 0 and "multimodal" in no_model.output
