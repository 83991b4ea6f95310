"""The fashion benchmark behind ``shelfwise bench multimodal``: train the text <-> image alignment
and the item fusion on part of the photos, and measure them on photos never used in training.

Split (seeded): ``test_size`` photos form the evaluation catalogue; the rest train, with
``valid_fraction`` of them held out for early stopping. Names of products without a photo
(``styles_full.csv``) may train the text side; the test products' names are excluded from those.

The image backbone's trunk runs once per photo and view (cached); the frozen-feature variants read
the pretrained tail's output, the tuned variant trains the tail itself (``tune_image``).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from shelfwise.multimodal.alignment import AlignmentConfig, Aligner, PhotoInputs, TrunkInputs, retrieval_recall, take_photos
from shelfwise.multimodal.features import colour_features, image_features, text_features, trunk_features
from shelfwise.multimodal.fusion import FUSIONS, FusionConfig, ItemFuser
from shelfwise.multimodal.labels import build_vocab
from shelfwise.multimodal.model import MultimodalModel
from shelfwise.multimodal.photo_tuning import PhotoTuner, PhotoTuningConfig
from shelfwise.training.loop import TrainConfig

LABELS = ("articleType", "baseColour", "gender", "season", "usage")


@dataclass
class BenchConfig:
    test_size: int = 2000
    valid_fraction: float = 0.1
    seed: int = 0
    extra_texts: int = 20000  # names without photos for the text side; 0 = none
    views: tuple[str, ...] = ("plain", "hflip")
    fusion_methods: tuple[str, ...] = tuple(FUSIONS)
    ablations: bool = True
    colour_bins: int = 5  # colour histogram appended to the photo features (0 = none)
    colour_hsv: bool = True  # + hue / saturation / value histogram and colour statistics (ImageEncoderConfig.colour_hsv)
    # The photos are 60x80: 160 px doubles them (upscaling further adds no detail, only compute).
    image_size: int = 160
    # The backbone's first 11 of 16 blocks run once per photo (cached); the rest + head is the tail,
    # fine-tuned with the alignment when tune_image: the stride-32 stage and the last block hold
    # most weights and cost the least to train. The frozen variants read the pretrained tail.
    # Off by default: on the fashion photos the tuned tail lost to frozen features on validation
    # and costs ~25 min (docs/benchmarks.md).
    trunk_blocks: int = 11
    # The last variant adds these blocks' pooled outputs to the photo features (standardised) and
    # reads the photo's attributes with linear probes of this L2 weight (AlignmentConfig).
    pooled_blocks: tuple[int, ...] = tuple(range(5, 16))
    photo_probe_l2: float = 1e-3
    # The last variant also reads a name's attributes with linear probes (this L2 weight) fitted on
    # every labelled name; chosen on names held out of the extra names (docs/benchmarks.md).
    text_probe_l2: float = 1e-6
    # The chosen variant's retrieval weights are chosen again on the training pairs, cross-fitted
    # over this many folds (Aligner.cross_fit_weights; one fit per fold); 0 = keep the weights
    # the validation pairs chose.
    weight_folds: int = 5
    tune_image: bool = False
    # Fine-tune the whole image backbone on the training photos' labels first (~20 min on 2 CPU
    # threads); every variant then reads the tuned backbone's features and the saved model serves it.
    # Off by default: not better on text -> image Recall@10 with the weights validation chooses (docs/benchmarks.md).
    photo_tuning: PhotoTuningConfig | None = None
    image_lr_scale: float = 0.1  # pretrained weights move at this multiple of the heads' learning rate
    tuning: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=20, batch_size=256, lr=1e-3, weight_decay=0.05, warmup_steps=20, metric="selection", patience=6, progress=False))
    fusion_extra_texts: int = 4000  # names without a photo among the fusion's training items (CPU budget)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)


def load_fashion(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(photos, all products) from the fashion folder; photo paths made absolute."""
    photos = pd.read_csv(folder / "images_manifest.csv", dtype=str, keep_default_na=False)
    styles = pd.read_csv(folder / "styles_full.csv", dtype=str, keep_default_na=False)
    photos["path"] = [str(folder / p) for p in photos["image"]]
    return photos, styles


def split(n: int, test_size: int, valid_fraction: float, seed: int) -> dict[str, np.ndarray]:
    if test_size >= n:
        raise ValueError(f"test_size {test_size} leaves no photos to train on ({n} photos)")
    order = np.random.default_rng(seed).permutation(n)
    test, rest = order[:test_size], order[test_size:]
    n_valid = max(1, int(round(valid_fraction * len(rest))))
    return {"test": np.sort(test), "valid": np.sort(rest[:n_valid]), "train": np.sort(rest[n_valid:])}


def type_share(query_types: np.ndarray, target_types: np.ndarray, scores: np.ndarray, k: int = 10) -> float:
    """Mean share of each query's top k targets that have the query's type."""
    top = np.argsort(-scores, axis=1)[:, :k]
    return float((target_types[top] == query_types[:, None]).mean())


def retrieval_metrics(aligner: Aligner, images: np.ndarray, texts: np.ndarray, types: np.ndarray) -> dict[str, float]:
    image_items, text_queries = aligner.embed_images(images, side="item"), aligner.embed_texts(texts, side="query")
    image_queries, text_items = aligner.embed_images(images, side="query"), aligner.embed_texts(texts, side="item")
    t2i, i2t = retrieval_recall(text_queries, image_items), retrieval_recall(image_queries, text_items)
    out = {f"text_to_image_recall@{k}": v for k, v in t2i.items()}
    out.update({f"image_to_text_recall@{k}": v for k, v in i2t.items()})
    out["text_to_image_type_share@10"] = type_share(types, types, text_queries @ image_items.T)
    out["image_to_image_type_share@10"] = _neighbour_type_share(image_queries, image_items, types)
    return out


def _neighbour_type_share(queries: np.ndarray, items: np.ndarray, types: np.ndarray, k: int = 10) -> float:
    """Search by photo: share of a photo's k nearest other photos with its article type."""
    scores = queries @ items.T
    np.fill_diagonal(scores, -np.inf)
    return type_share(types, types, scores, k)


def _machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}


def image_throughput(encoder, paths: list[str], n: int = 64) -> float:
    """Photos per second, read + preprocess + encode, batch 32."""
    sample = paths[:n]
    encoder.encode(sample[:4])  # warm-up
    started = time.perf_counter()
    encoder.encode(sample)
    return len(sample) / (time.perf_counter() - started)


@dataclass
class Variant:
    """One alignment model to train: its config, the photos (frozen features [n, V, D] or trunk
    activations to fine-tune on), how many views, whether names without a photo train the text side."""

    alignment: AlignmentConfig
    photos: PhotoInputs
    view_count: int = 1
    extra_names: bool = False
    colour_bins: int = 0
    pooled_blocks: tuple[int, ...] = ()  # ImageEncoderConfig.pooled_blocks of these features

    @property
    def tuned(self) -> bool:
        return isinstance(self.photos, TrunkInputs)


def run(folder: Path | str, out: Path | str, config: BenchConfig | None = None, cache_dir: Path | str | None = None, progress: bool = True, log=print) -> dict:
    from shelfwise.encoders.image import EMBEDDING_DIM, BackboneTail, ImageEncoder, ImageEncoderConfig, load_backbone
    from shelfwise.encoders.text import TextEncoder

    c = config or BenchConfig()
    folder, out = Path(folder).resolve(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else out / "cache"
    started = time.time()
    photos, styles = load_fashion(folder)
    parts = split(len(photos), c.test_size, c.valid_fraction, c.seed)
    log(f"data: {folder} — {len(photos):,} photos ({len(parts['train'])} train, {len(parts['valid'])} valid, {len(parts['test'])} test), {len(styles):,} product names")

    paths = photos["path"].tolist()
    vocabs = {k: build_vocab(styles[k], photos[k]) for k in LABELS}
    labels = {k: photos[k].to_numpy() for k in LABELS}
    tuned_weights, tuning_summary = None, None
    if c.photo_tuning is not None:
        if c.tune_image:
            raise ValueError("photo_tuning and tune_image both fine-tune the image backbone; choose one")
        t0 = time.time()
        tuner = tune_photos(c, paths, parts, labels, vocabs, log)
        tuned_weights = tuner.weights_
        tuning_summary = {"best_epoch": tuner.best_epoch_, "history": tuner.history_, "seconds": round(time.time() - t0, 1)}
    image_encoder = ImageEncoder(ImageEncoderConfig(image_size=c.image_size, pooled_blocks=c.pooled_blocks), weights=tuned_weights)
    text_encoder = TextEncoder()
    pooled = np.stack([image_features(image_encoder, paths, v, cache, progress) for v in c.views], axis=1)  # [n, V, 1280 + blocks]
    cnn = pooled[:, :, :EMBEDDING_DIM]  # the head's features: what ImageEncoder() without pooled blocks gives
    colours = np.stack([colour_features(paths, c.colour_bins, v, cache, c.colour_hsv) for v in c.views], axis=1) if c.colour_bins else None
    views = cnn if colours is None else np.concatenate([cnn, colours], axis=2)  # what ImageEncoder(colour_bins=...) gives
    views_pooled = pooled if colours is None else np.concatenate([pooled, colours], axis=2)
    image_dim = views.shape[2]
    start = c.trunk_blocks  # the trunk ends and the tail starts here (fine-tuning only)
    trunks = np.stack([trunk_features(image_encoder, paths, start, v, cache, progress) for v in c.views], axis=1) if c.tune_image else None
    names = list(dict.fromkeys(styles["productDisplayName"]))
    name_vectors = text_features(text_encoder, names, cache, progress)
    name_row = {name: i for i, name in enumerate(names)}
    text = name_vectors[[name_row[n] for n in photos["productDisplayName"]]]
    failed = ~cnn[:, 0].any(1)
    if failed.any():
        log(f"{int(failed.sum())} photos could not be read and are left out")
    for key in parts:
        parts[key] = parts[key][~failed[parts[key]]]

    # Names without a photo, none of them a test product's: the text side's extra training data.
    extra = styles[~styles["id"].isin(photos["id"])]
    if c.extra_texts and len(extra) > c.extra_texts:
        extra = extra.sample(c.extra_texts, random_state=c.seed)
    extra_vectors = name_vectors[[name_row[n] for n in extra["productDisplayName"]]] if c.extra_texts else None
    extra_labels = {k: extra[k].to_numpy() for k in LABELS}

    tr, va, te = parts["train"], parts["valid"], parts["test"]
    test_types = labels["articleType"][te]

    def training_data(variant: Variant) -> dict:
        """What Aligner.fit (and cross_fit_weights) read for this variant."""
        return dict(
            images=take_photos(variant.photos, tr, slice(0, variant.view_count)), texts=text[tr], labels={k: v[tr] for k, v in labels.items()},
            extra_texts=extra_vectors if variant.extra_names else None, extra_labels=extra_labels if variant.extra_names else None,
            valid=(take_photos(variant.photos, va, 0), text[va], {k: v[va] for k, v in labels.items()}),
        )

    def fit_aligner(variant: Variant) -> Aligner:
        tail = BackboneTail(load_backbone(), start, c.image_lr_scale) if variant.tuned else None
        aligner = Aligner(variant.alignment, c.tuning if variant.tuned else None, vocabs=vocabs, image_tail=tail)
        return aligner.fit(**training_data(variant))

    def serving_features(aligner: Aligner, variant: Variant) -> np.ndarray:
        """[n, D] features of the plain photos as the saved model's image encoder gives them."""
        if not variant.tuned:
            return variant.photos[:, 0]
        tuned = ImageEncoder(ImageEncoderConfig(image_size=c.image_size), weights=aligner.image_backbone_weights()).encode_from_trunk(trunks[:, 0], start)
        return tuned if colours is None else np.concatenate([tuned, colours[:, 0]], axis=1)

    def evaluate(aligner: Aligner, features: np.ndarray) -> dict:
        metrics = retrieval_metrics(aligner, features[te], text[te], test_types)
        for k in ("articleType", "baseColour"):
            if aligner.config.attribute_weight and k in aligner.vocabs:
                metrics[f"{k}_accuracy_from_image_head"] = float(np.mean(aligner.photo_attributes(features[te], k) == labels[k][te]))
                metrics[f"{k}_accuracy_from_name"] = float(np.mean(aligner.text_attributes(text[te], k) == labels[k][te]))
        metrics["best_epoch"] = aligner.result.best_epoch
        metrics["retrieval_weights"] = dict(aligner.config.retrieval_weights)
        return metrics

    results: dict = {"machine": _machine(), "data": str(folder), "split": {k: int(len(v)) for k, v in parts.items()},
                     "config": _jsonable(asdict(c))}
    if tuning_summary is not None:
        results["photo_tuning"] = tuning_summary
    main_alignment = replace(c.alignment, image_dim=image_dim)
    # Each variant adds one thing to the one before (the floor first: the baseline).
    plain_cnn = replace(main_alignment, image_dim=cnn.shape[2])
    n_views, use_extra = len(c.views), bool(c.extra_texts)
    variants = {"full": Variant(main_alignment, views, n_views, use_extra, c.colour_bins)}
    if c.pooled_blocks:
        mid_level = replace(main_alignment, image_dim=views_pooled.shape[2], standardize_images=True)
        variants["+mid_level_features"] = Variant(mid_level, views_pooled, n_views, use_extra, c.colour_bins, c.pooled_blocks)
        if c.photo_probe_l2:
            probes = replace(mid_level, photo_probe_l2=c.photo_probe_l2)
            variants["+photo_probes"] = Variant(probes, views_pooled, n_views, use_extra, c.colour_bins, c.pooled_blocks)
            if c.text_probe_l2:
                variants["+text_probes"] = Variant(replace(probes, text_probe_l2=c.text_probe_l2), views_pooled, n_views, use_extra,
                                                   c.colour_bins, c.pooled_blocks)
    if c.tune_image:
        tuned = Variant(main_alignment, TrunkInputs(trunks, colours), n_views, use_extra, c.colour_bins)
        variants = {**variants, "+tuned_backbone": tuned} if c.ablations else {"+tuned_backbone": tuned}
    if c.ablations:
        variants = {
            "floor_linear_contrastive": Variant(replace(plain_cnn, image_hidden=0, text_hidden=0, attribute_weight=0.0, input_dropout=0.0, dropout=0.0), cnn),
            "mlp_contrastive": Variant(replace(plain_cnn, attribute_weight=0.0), cnn),
            "+attribute_heads": Variant(plain_cnn, cnn),
            "+colour_histogram": Variant(main_alignment, views, colour_bins=c.colour_bins),
            "+extra_names": Variant(main_alignment, views, extra_names=use_extra, colour_bins=c.colour_bins),
            **variants,
        }
    # The saved model is the variant with the best validation score (Recall@10 + attribute accuracy
    # on the held-out training photos); the test photos only report.
    ablations: dict[str, dict] = {}
    aligner, chosen, chosen_variant, best_score, photo_features = None, None, None, -np.inf, None
    for name, variant in variants.items():
        t0 = time.time()
        candidate = fit_aligner(variant)
        train_seconds = round(time.time() - t0, 1)
        features = serving_features(candidate, variant)
        ablations[name] = {**evaluate(candidate, features), "train_seconds": train_seconds,
                           "valid_selection": candidate.result.best_metrics.get("selection")}
        log(f"alignment {name}: " + _brief(ablations[name]) + f" (valid {ablations[name]['valid_selection']:.3f}, {train_seconds:.0f}s)")
        score = ablations[name]["valid_selection"] if candidate.config.attribute_weight else -np.inf
        if score > best_score or aligner is None:  # only contrastive variants: the first is kept
            aligner, chosen, best_score, chosen_variant, photo_features = candidate, name, score, variant, features
    results["alignment"] = {**ablations[chosen], "variant": chosen}
    results["alignment_ablations"] = ablations
    log(f"alignment selected on validation: {chosen}")
    folds = min(c.weight_folds, len(tr) // 2)  # a tiny training set gets fewer folds
    if folds >= 2 and aligner.config.attribute_weight and not chosen_variant.tuned:
        t0, from_validation = time.time(), dict(aligner.config.retrieval_weights)
        aligner.cross_fit_weights(**training_data(chosen_variant), folds=folds, seed=c.seed)
        results["alignment"].update(evaluate(aligner, photo_features), weights_from_validation=from_validation,
                                    weights_chosen_by=f"{folds}-fold cross-fitting", cross_fit_seconds=round(time.time() - t0, 1))
        log(f"retrieval weights cross-fitted over {folds} folds: {aligner.config.retrieval_weights} "
            f"(validation chose {from_validation}): " + _brief(results["alignment"]))

    # Fusion: predict article type and colour from photo / name / attributes, each method compared.
    # Training items: the photos of the training split, plus the names without a photo (text-only
    # items, as a shop has them) so the name path learns from the whole catalogue.
    fusion_results, best_fuser, best_valid = {}, None, -1.0
    for method in c.fusion_methods:
        fuser = ItemFuser(replace(c.fusion, method=method, image_dim=photo_features.shape[1]), vocabs=vocabs)
        train_inputs = fuser.inputs(photo_features[tr], text[tr], {k: v[tr] for k, v in labels.items()})
        train_labels = {k: v[tr] for k, v in labels.items()}
        if extra_vectors is not None and c.fusion_extra_texts:
            from shelfwise.multimodal.fusion import ItemInputs

            m = min(c.fusion_extra_texts, len(extra_vectors))
            text_only = fuser.inputs(None, extra_vectors[:m], {k: v[:m] for k, v in extra_labels.items()})
            train_inputs = ItemInputs.concat([train_inputs, text_only])
            train_labels = {k: np.concatenate([train_labels[k], extra_labels[k][:m]]) for k in train_labels}
        fuser.fit(
            train_inputs,
            train_labels,
            valid=(fuser.inputs(photo_features[va], text[va], {k: v[va] for k, v in labels.items()}), {k: v[va] for k, v in labels.items()}),
        )
        test_labels = {k: v[te] for k, v in labels.items()}
        test_attributes = {k: v[te] for k, v in labels.items()}
        subsets = {
            "image": fuser.inputs(photo_features[te], None),
            "text": fuser.inputs(None, text[te]),
            "image+text": fuser.inputs(photo_features[te], text[te]),
            "image+text+attributes": fuser.inputs(photo_features[te], text[te], test_attributes),
            "attributes": fuser.inputs(None, None, test_attributes),
        }
        fusion_results[method] = {name: fuser.accuracy(inputs, test_labels) for name, inputs in subsets.items()}
        fusion_results[method]["valid_accuracy"] = fuser.result.best_metrics.get("accuracy")
        log(f"fusion {method}: " + ", ".join(f"{s} {v['articleType']:.3f}/{v['baseColour']:.3f}" for s, v in fusion_results[method].items() if isinstance(v, dict)))
        if fuser.result.best_metrics.get("accuracy", 0) > best_valid:
            best_fuser, best_valid = fuser, fuser.result.best_metrics["accuracy"]
    results["fusion"] = fusion_results
    results["fusion_selected"] = best_fuser.config.method if best_fuser else None

    image_config = {"colour_bins": chosen_variant.colour_bins, "colour_hsv": bool(chosen_variant.colour_bins and c.colour_hsv),
                    "image_size": c.image_size, "pooled_blocks": list(chosen_variant.pooled_blocks)}
    model = MultimodalModel(aligner, best_fuser, image_config=image_config,
                            image_weights=aligner.image_backbone_weights() or tuned_weights)
    # Time what search will run: the saved model's image encoder, colour histogram included.
    results["throughput"] = {"images_per_second": round(image_throughput(model.make_image_encoder(), [paths[i] for i in te]), 1), "threads": torch.get_num_threads()}
    results["seconds"] = round(time.time() - started, 1)
    artifact = model.save(out / "model", metrics={"alignment": results["alignment"], "fusion": fusion_results})
    results["artifact"] = str(artifact.path)
    (out / "metrics.json").write_text(json.dumps(results, indent=2, default=float))
    return results


def tune_photos(c: BenchConfig, paths: list[str], parts: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                vocabs: dict[str, list[str]], log=print) -> PhotoTuner:
    """Fine-tune the image backbone on the training photos' labels, the epoch chosen on the
    validation photos (see shelfwise.multimodal.photo_tuning); unreadable photos are left out."""
    from shelfwise.encoders.image import ImageEncoder, ImageEncoderConfig
    from shelfwise.multimodal.labels import encode_labels

    encoder = ImageEncoder(ImageEncoderConfig(image_size=c.image_size))
    attributes = list(c.photo_tuning.attribute_weights)
    unknown = [a for a in attributes if a not in labels]
    if unknown:
        raise ValueError(f"photo tuning attributes {unknown} are not fashion labels; expected some of {list(LABELS)}")

    def inputs(rows: np.ndarray):
        pixels = encoder.pixels([paths[i] for i in rows])
        rows = rows[pixels.ok]
        return pixels.vectors[pixels.ok], {a: encode_labels(labels[a][rows], vocabs[a]) for a in attributes}

    train_pixels, train_codes = inputs(parts["train"])
    log(f"photo tuning: {len(train_pixels)} training photos, {c.photo_tuning.epochs} epochs")
    return PhotoTuner(c.photo_tuning).fit(train_pixels, train_codes, {a: len(vocabs[a]) for a in attributes}, inputs(parts["valid"]), log=log)


def _brief(m: dict) -> str:
    return (f"t2i R@1/5/10 {m['text_to_image_recall@1']:.3f}/{m['text_to_image_recall@5']:.3f}/{m['text_to_image_recall@10']:.3f}, "
            f"type share {m['text_to_image_type_share@10']:.3f}, i2t R@10 {m['image_to_text_recall@10']:.3f}"
            + (f", type from photo {m['articleType_accuracy_from_image_head']:.3f}" if "articleType_accuracy_from_image_head" in m else ""))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
