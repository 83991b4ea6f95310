"""Models in production: the one function that turns an artifact (or, before any exists, a
baseline fitted on the store) into a servable ``RecommenderService``, and the registry that
switches versions while serving.

A switch builds the new service completely, then replaces the old one with one assignment:
requests in flight finish on the service they started with, new ones get the new one, so no
request fails during a switch. The previous service is kept for an instant rollback.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from shelfwise import artifacts
from shelfwise.config import Settings
from shelfwise.datasets.store_data import session_sequences, user_sequences
from shelfwise.serving.metrics import Metrics
from shelfwise.serving.ranking import MerchandisingRules, load_rules, save_rules
from shelfwise.serving.recommend import ModelInfo, RecommenderService
from shelfwise.store import Store

log = logging.getLogger("shelfwise.models")

# Artifact names looked for, in order, when no model is named (SHELFWISE_MODEL).
SEQUENTIAL_MODELS = ("sasrec", "bert4rec", "gru4rec", "lstm")
BASELINES = ("transitions", "popularity")


class ModelNotFound(LookupError):
    pass


def shop_sequences(store: Store):
    """The shop's item sequences: per session when the events carry sessions, else per user."""
    seqs = session_sequences(store)
    return seqs if len(seqs.items) else user_sequences(store)


def _fit_baseline(name: str, seqs):
    from shelfwise.recommenders.baselines import ItemTransitions, Popularity

    if name == "transitions":
        has_transitions = bool(np.any(seqs.lengths >= 2))
        if has_transitions:
            # Forward only: the API may show history items again (exclude_history is the caller's
            # choice), and counting what came *before* would put the item just viewed first.
            return "transitions", ItemTransitions(backward=0.0).fit(seqs)
    return "popularity", Popularity().fit(seqs)


def available_models(settings: Settings) -> dict[str, dict]:
    """Every artifact model under ``<home>/artifacts`` with its versions and ``latest``."""
    out = {}
    root = settings.artifacts
    if root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "latest").is_file()):
            out[folder.name] = {"latest": (folder / "latest").read_text().strip(), "versions": artifacts.versions(folder)}
    return out


def resolve_model_name(settings: Settings, name: str | None) -> str:
    if name:
        return name
    if settings.model:
        return settings.model
    found = available_models(settings)
    return next((n for n in SEQUENTIAL_MODELS if n in found), "transitions")


def load_service(settings: Settings, store: Store, name: str | None = None, version: str | None = None,
                 rules: MerchandisingRules | None = None) -> RecommenderService:
    """The one place a servable model is made.

    ``name``: an artifact folder under ``<home>/artifacts`` (a sequence model saved by
    ``shelfwise train recommender``), or ``transitions`` / ``popularity`` (fitted on the store
    now). Without a name: ``SHELFWISE_MODEL``, else the first trained sequence model found,
    else ``transitions``. ``version`` defaults to the artifact's ``latest``."""
    name = resolve_model_name(settings, name)
    rules = rules if rules is not None else load_rules(settings.home)
    started = time.time()
    seqs = shop_sequences(store)
    items = store.items_frame()
    if name in BASELINES:
        if version:
            raise ModelNotFound(f"{name} is fitted at load time and has no versions")
        served_name, model = _fit_baseline(name, seqs)
        info = ModelInfo(served_name, "fitted-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)), "fitted",
                         created_at=started, loaded_at=time.time(), n_items=seqs.n_items)
        return RecommenderService.build(info, model, None, seqs, items, rules)
    root = settings.artifacts / name
    path = root / version if version else root
    if not (path / "config.json").is_file() and not (path / "latest").is_file():
        raise ModelNotFound(f"no artifact {name!r}" + (f" version {version!r}" if version else "") + f" under {settings.artifacts}")
    model, model_item_ids, artifact = _load_sequential(path)
    model_item_ids = _add_new_catalogue_items(model, model_item_ids, items)
    info = ModelInfo(name, artifact.version, "artifact", str(artifact.path),
                     created_at=os.path.getmtime(artifact.path / "config.json"), loaded_at=time.time(),
                     n_items=len(model_item_ids) - 1 if model_item_ids is not None else 0, metrics=artifact.metrics)
    return RecommenderService.build(info, model, model_item_ids, seqs, items, rules)


def _add_new_catalogue_items(model, model_item_ids: np.ndarray, items) -> np.ndarray:
    """A text-aware model scores the catalogue items that came after its training by their text, from the
    moment it is loaded (no retraining): their vectors come from the encoder its items were encoded with.
    Returns the model's item ids, the new ones appended."""
    if not model.text_aware or items.empty:
        return model_item_ids
    new = items[~items["item_id"].astype(str).isin(set(map(str, model_item_ids)))]
    if new.empty:
        return model_item_ids
    from shelfwise.recommenders.item_repr import encode_item_texts
    from shelfwise.search.semantic import item_texts

    encoder = Path(model.item_text_encoder) if model.item_text_encoder else None
    if encoder is not None and not encoder.exists():
        log.warning("%d catalogue items came after the model's training; its adapted text encoder %s is gone, so they "
                    "wait for the next training", len(new), encoder)
        return model_item_ids
    vectors = encode_item_texts(item_texts(new), progress=False, encoder_artifact=encoder)[1:]
    model.add_items(new["item_id"].astype(str), vectors)
    log.info("%d catalogue items that came after the model's training are scored by their text", len(new))
    return np.asarray(model.item_ids_, dtype=object)


def _load_sequential(path: Path):
    import torch

    from shelfwise.recommenders.neural import SequentialRecommender

    # One thread per request: several requests score at once on the API's workers.
    torch.set_num_threads(1)
    artifact = artifacts.load(path)
    model = SequentialRecommender.load(artifact.path)
    item_ids = model.item_ids_
    if item_ids is None:
        raise ModelNotFound(f"{artifact.path} has no items.json: its item indexes cannot be mapped to the catalogue")
    return model, np.asarray(item_ids, dtype=object), artifact


class ModelRegistry:
    """The service being served, the previous one, and the switches between them."""

    def __init__(self, settings: Settings, store: Store, metrics: Metrics, loader=load_service):
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.loader = loader
        self._switch = threading.Lock()  # serialises switches; requests never take it
        self._current: RecommenderService | None = None
        self._previous: RecommenderService | None = None

    @property
    def current(self) -> RecommenderService:
        service = self._current
        if service is None:
            raise RuntimeError("no model loaded")
        return service

    @property
    def previous(self) -> RecommenderService | None:
        return self._previous

    @property
    def ready(self) -> bool:
        return self._current is not None

    def load(self, name: str | None = None, version: str | None = None) -> tuple[ModelInfo | None, ModelInfo]:
        """Load a model (see ``load_service``) and switch to it; returns (old, new) infos."""
        with self._switch:
            service = self.loader(self.settings, self.store, name, version)
            return self._install(service, "reload")

    def rollback(self) -> tuple[ModelInfo, ModelInfo]:
        """Serve the previous model again (its catalogue refreshed); the current one becomes previous."""
        with self._switch:
            if self._previous is None:
                raise ModelNotFound("no previous model to roll back to")
            service = self._previous.with_catalogue(self.store.items_frame()).with_rules(load_rules(self.settings.home))
            return self._install(service, "rollback")

    def refresh_catalogue(self) -> None:
        """Pick up catalogue changes (stock, titles, categories) without reloading the model."""
        with self._switch:
            if self._current is not None:
                self._current = self._current.with_catalogue(self.store.items_frame())
                self._report_sizes()

    def set_rules(self, rules: MerchandisingRules) -> None:
        with self._switch:
            save_rules(self.settings.home, rules)
            if self._current is not None:
                self._current = self._current.with_rules(rules)
                self._report_sizes()

    def _install(self, service: RecommenderService, action: str) -> tuple[ModelInfo | None, ModelInfo]:
        old = self._current
        self._current = service  # the switch: one reference assignment
        self._previous = old
        i = service.info
        self.metrics.set_model(i.name, i.version, i.source, i.loaded_at, i.created_at)
        if old is not None:
            self.metrics.model_switches.labels(action).inc()
        self._report_sizes()
        log.info("model switched", extra={"fields": {"action": action, "name": i.name, "version": i.version,
                                                      "previous": old.info.version if old else None}})
        return (old.info if old else None), i

    def _report_sizes(self) -> None:
        for index, size in self._current.sizes().items():
            self.metrics.index_size.labels(index).set(size)
