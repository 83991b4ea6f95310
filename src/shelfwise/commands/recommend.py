"""``shelfwise bench sequential`` (leave-one-out benchmark on a per-user sequence file) and
``shelfwise train recommender`` (a sequence recommender on the shop's own events)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from shelfwise.config import Settings

# On a small shared machine, OpenMP threads that spin while waiting for a busy core make every
# kernel many times slower. It must be set before torch loads; torch loads inside the commands.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MODEL_NAMES = ["sasrec", "gru4rec", "lstm", "bert4rec", "popularity", "transitions"]  # recommenders.registry.names()


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, dict]:
    """``model.hidden=64`` / ``train.lr=0.002`` / ``loss.label_smoothing=0.1`` / ``blend.transitions_weight=0``
    -> {"model": {...}, ...}. Values are JSON (numbers, true/false, lists), else strings."""
    out: dict[str, dict] = {"model": {}, "train": {}, "loss": {}, "blend": {}}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in out:
            raise click.BadParameter(f"expected model.KEY=VALUE, train.KEY=VALUE, loss.KEY=VALUE or blend.KEY=VALUE, "
                                     f"got {pair!r}", param_hint="--set")
        try:
            out[section][name] = json.loads(value)
        except json.JSONDecodeError:
            out[section][name] = value
    return out


def make_recommender(model: str, overrides: dict[str, dict], epochs: int | None, seed: int, progress: bool, checkpoint_dir: str | None):
    """A fitted-to-be recommender: a baseline by name, or a ``SequentialRecommender``."""
    from dataclasses import fields

    from shelfwise.recommenders.losses import LossConfig
    from shelfwise.recommenders.neural import SequentialRecommender
    from shelfwise.recommenders.registry import BASELINES, MODELS
    from shelfwise.training.loop import TrainConfig

    if model in BASELINES:
        return BASELINES[model]()
    if model not in MODELS:
        raise click.BadParameter(f"unknown model {model!r}; choose one of {MODEL_NAMES}", param_hint="--model")
    train_settings = dict(overrides["train"])
    if epochs is not None:
        train_settings["epochs"] = epochs
    known = {f.name for f in fields(TrainConfig)}
    if set(train_settings) - known:
        raise click.BadParameter(f"unknown train settings {sorted(set(train_settings) - known)}", param_hint="--set")
    train_config = TrainConfig(**{"seed": seed, "progress": progress, "checkpoint_dir": checkpoint_dir, **train_settings})
    blend = overrides.get("blend", {})
    if set(blend) - {"transitions_weight", "rerank"}:
        raise click.BadParameter(f"unknown blend settings {sorted(set(blend) - {'transitions_weight', 'rerank'})}; "
                                 "there are blend.transitions_weight (auto or a number) and blend.rerank (true or false)",
                                 param_hint="--set")
    try:
        return SequentialRecommender(model=model, model_config=overrides["model"], loss=LossConfig(**overrides["loss"]),
                                     train_config=train_config, transitions_weight=blend.get("transitions_weight", "auto"),
                                     rerank=blend.get("rerank", True))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--set") from None


def _item_repr(model: str, overrides: dict[str, dict], item_text: str) -> str:
    """The model's item representation, checked against the model and ``--item-text`` before any data is read."""
    from dataclasses import fields

    from shelfwise.recommenders.registry import MODELS

    item_repr = overrides["model"].get("item_repr", "id")
    text_models = sorted(name for name, (_, config) in MODELS.items() if "item_repr" in {f.name for f in fields(config)})
    if item_repr != "id" and model not in text_models:
        raise click.BadParameter(f"{model} cannot build item vectors from text (item_repr {item_repr!r}); "
                                 f"text-aware models: {text_models}", param_hint="--item-repr")
    if item_text != "frozen" and item_repr == "id":
        raise click.BadParameter(f"--item-text {item_text} adapts the item text encoder: it needs --item-repr text or text+id",
                                 param_hint="--item-text")
    return item_repr


def attach_item_text(recommender, item_text: str, texts: list[str], split, cache: Path, steps: int, progress: bool) -> dict | None:
    """Give a text-aware recommender the MiniLM vector of every item (``texts[i - 1]`` is item index i's): from the
    pretrained encoder (``item_text="frozen"``), or from one first adapted with LoRA to which items follow which in
    ``split.train`` (``"lora"``, early-stopped on the validation step). Returns the tuning's metrics (None when frozen)."""
    if item_text == "lora":
        from shelfwise.recommenders.text_tuning import adapted_item_vectors

        recommender.item_text, tuning = adapted_item_vectors(texts, split.train, split.valid_history, split.valid_target, cache,
                                                             max_steps=steps, progress=progress)
        recommender.item_text_encoder = tuning["encoder"]
        return tuning
    from shelfwise.recommenders.item_repr import encode_item_texts

    recommender.item_text = encode_item_texts(texts, cache, progress=progress)
    return None


def item_text_options(command):
    """The text-aware item options of ``bench sequential`` and ``train recommender``."""
    options = [
        click.option("--item-repr", type=click.Choice(["id", "text", "text+id"]), default=None,
                     help="Item vectors: learned IDs (default), projected frozen MiniLM vectors of the item text, or both, so "
                          "items with no events yet are recommended by their text. Same as --set model.item_repr=..."),
        click.option("--item-text", type=click.Choice(["frozen", "lora"]), default="frozen", show_default=True,
                     help="Text-aware items: the pretrained MiniLM as it is, or adapted first with LoRA to which items follow "
                          "which in the training sequences (recommenders/text_tuning.py)."),
        click.option("--item-text-steps", default=300, show_default=True, type=click.IntRange(min=1),
                     help="--item-text lora: at most this many training steps (early stopping on the validation step)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# After the epoch is chosen, one more epoch on the test histories (each user's validation item
# included) at the final learning rate. It cannot be chosen on the validation step it trains on,
# so it was checked one step earlier: on Beauty with every user's last item removed, the "test"
# step is the real validation step, and one refit epoch moved it from 0.0664 / 0.1072 to
# 0.0671 / 0.1086 NDCG@10 / HR@10 (docs/benchmarks.md).
REFIT_EPOCHS = 1


def run_sequential_benchmark(data: Path, model: str, out: Path, overrides: dict[str, dict] | None = None, epochs: int | None = None,
                             seed: int = 0, threads: int = 2, mask_history: bool = True, progress: bool = True, resume: bool = False,
                             data_format: str = "user-sequences", cold_items: float = 0.0, cache_dir: Path | None = None,
                             refit_epochs: int = REFIT_EPOCHS, item_text: str = "frozen", item_text_steps: int = 300) -> dict:
    """Leave-one-out benchmark: train on all but the last two items per user, select the epoch by
    validation NDCG@10, then rank every item for each user's test step from the history before
    the test item. Writes ``out/metrics.json``, ``out/test_top100.tsv``, ``out/report.html`` and the
    trained model under ``out/model``; returns the metrics dict.

    ``data_format``: ``user-sequences`` (a file, one user per line) or ``recbole-text`` (a folder of
    RecBole atomic files with item text, e.g. amazon_scientific; enables ``model.item_repr`` text / text+id).
    ``cold_items``: the share of items (seeded draw) removed from training and validation, so the test
    cases whose target is one of them measure recommending items with no history. The test is also
    reported on ``test_cold`` (targets that never occur in training) and ``test_warm`` (the rest).
    After the epoch is selected, a recommender that can learn from new events (``partial_fit``) sees
    the test histories (every user's items before the test item): its item transitions are counted
    on them, and the network trains ``refit_epochs`` more epochs on them."""
    import numpy as np
    import torch

    from shelfwise.evaluation.metrics import evaluate_ranking, ranking_metrics
    from shelfwise.training import distributed

    started = time.time()
    load_at_start = os.getloadavg()
    torch.set_num_threads(threads)
    distributed.init()  # under torchrun: every process trains on its share, rank 0 evaluates and writes
    overrides = overrides or _parse_overrides(())
    item_repr = _item_repr(model, overrides, item_text)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoints = out / "checkpoints"
    if not resume and checkpoints.exists() and distributed.is_main():
        import shutil

        shutil.rmtree(checkpoints, ignore_errors=True)
    split, test_history, test_target, item_texts = _read_benchmark(Path(data), data_format)
    held = np.zeros(split.train.n_items + 1, dtype=bool)
    if cold_items:
        held = _held_out_items(split.train.n_items, cold_items, seed)
        train = _without_items(split.train, held)
        keep = np.flatnonzero(~held[split.valid_target])  # epochs are chosen on warm items only
        split.train, split.valid_history, split.valid_target = train, train.take(keep), split.valid_target[keep]

    recommender = make_recommender(model, overrides, epochs, seed, progress, str(checkpoints))
    text_tuning = None  # the adapted text encoder's validation metrics (--item-text lora)
    if item_repr != "id":
        if item_texts is None:
            raise click.BadParameter(f"item_repr {item_repr!r} needs item text: use --format recbole-text", param_hint="--item-repr")
        text_tuning = attach_item_text(recommender, item_text, item_texts, split, cache_dir or Settings().home / "cache",
                                       item_text_steps, progress)
    if hasattr(recommender, "mask_history"):
        recommender.mask_history = mask_history
        recommender.fit(split.train, split.valid_history, split.valid_target)
    else:
        recommender.fit(split.train)
    if hasattr(recommender, "partial_fit"):
        recommender.partial_fit(_without_items(test_history, held) if cold_items else test_history, refit_epochs)
    fit_seconds = time.time() - started
    if not distributed.is_main():
        return {}

    ks = (10, 20)
    result = getattr(recommender, "result_", None)
    if result is not None and result.best_metrics:  # the training loop already scored the selected epoch
        valid_metrics = result.best_metrics
    else:
        valid_metrics, _ = evaluate_ranking(recommender.score, split.valid_history, split.valid_target, ks=ks,
                                            mask_history=mask_history)
    t0 = time.time()
    test_metrics, top = evaluate_ranking(recommender.score, test_history, test_target, ks=ks, mask_history=mask_history, keep=100)
    test_seconds = time.time() - t0
    # Cold = the target never occurs in training (held out, or in the data's own tail): only item text can rank it.
    seen = np.bincount(split.train.items, minlength=split.train.n_items + 1) > 0
    cold = ~seen[test_target]
    by_kind = {}
    for name, rows in (("test_cold", cold), ("test_warm", ~cold)):
        rows_t = torch.from_numpy(rows)
        by_kind[name] = {**ranking_metrics(top[rows_t], torch.from_numpy(test_target[rows]), ks), "cases": int(rows.sum())}
    by_kind["test_cold"]["random_hr@10"] = 10 / split.train.n_items  # a uniformly random list of 10 items
    top = top[:, :100].numpy()
    item_ids = split.train.item_ids
    _write_top_lists(out / "test_top100.tsv", test_history.keys, top, item_ids)
    if data_format == "recbole-text":  # the same users as full sequences, so ../shared/eval/seq_score.py can score the lists
        _write_user_sequences(out / "test_sequences.txt", test_history, test_target, item_ids)

    history = result.history if result else []
    n_epochs = result.epochs_run if result else 0
    metrics = {
        "data": str(Path(data).resolve()),
        "format": data_format,
        "model": model,
        "users": len(test_history),
        "items": split.train.n_items,
        "interactions": int(len(test_history.items) + len(test_target)),
        "protocol": {
            "split": "leave-one-out: last item = test, second last = validation",
            "ranking": "full ranking over all items",
            "mask_history": mask_history,
            "selection": "epoch with the best validation ndcg@10",
            "test_users": len(test_history),
            "cold_items": {"share": cold_items, "held_out": int(held.sum()), "seed": seed},
            "refit": {"on": "the test histories (items before each user's test item)", "transitions": getattr(recommender, "transitions_", None) is not None,
                      "network_epochs": refit_epochs if hasattr(recommender, "partial_fit") else 0},
        },
        "item_text": None if item_repr == "id" else {"encoder": item_text, "tuning": text_tuning},
        **_scoring_summary(recommender),
        "valid": valid_metrics,
        "test": test_metrics,
        **by_kind,
        **_training_summary(result, n_epochs),
        "fit_seconds": fit_seconds,
        "test_seconds": test_seconds,
    }
    _finish(metrics, out, recommender, model, data, valid_metrics, test_metrics, history, started, load_at_start, threads)
    return metrics


def _training_summary(result, n_epochs: int) -> dict:
    """The training fields of metrics.json (a baseline, trained on nothing, has zeros)."""
    return {
        "epochs": n_epochs,
        "best_epoch": (result.best_epoch + 1) if result else 0,
        "stopped": result.stopped if result else "",
        "seconds_per_epoch": (result.train_seconds / n_epochs) if n_epochs else 0.0,
        "eval_seconds_per_epoch": (result.eval_seconds / n_epochs) if n_epochs else 0.0,
    }


def _finish(metrics: dict, out: Path, recommender, model: str, data: Path, valid_metrics: dict, test_metrics: dict, history: list,
            started: float, load_at_start: tuple, threads: int) -> None:
    """Add the cost and the machine to ``metrics``, save the model, write report.html and metrics.json."""
    import resource

    import torch

    from shelfwise.evaluation.report import write_report
    from shelfwise.training import distributed

    metrics["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics["config"] = recommender.config() if hasattr(recommender, "config") else {"model": model}
    metrics["machine"] = {"cpus": os.cpu_count(), "threads": threads, "processes": distributed.world_size(), "torch": torch.__version__,
                          "load_average_at_start": load_at_start}
    metrics["history"] = history
    if hasattr(recommender, "save"):
        recommender.save(out / "model", {"valid": valid_metrics, "test": test_metrics})
    metrics["machine"]["load_average_at_end"] = os.getloadavg()
    metrics["total_seconds"] = time.time() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time of this process: on a shared machine wall time depends on the neighbours, this does not.
    metrics["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    write_report(out / "report.html", f"{model} on {Path(data).name}", {"valid": valid_metrics, "test": test_metrics}, history,
                 notes={k: metrics[k] for k in ("data", "epochs", "best_epoch", "stopped", "seconds_per_epoch", "total_seconds")})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))


DATA_FORMATS = ["user-sequences", "recbole-text"]


def _scoring_summary(recommender) -> dict:
    """What the network's scores went through after training, as chosen on validation (NDCG@10 / HR@10 there)."""
    def brief(metrics: dict) -> dict:
        return {k: metrics[k] for k in ("ndcg@10", "hr@10")}

    return {
        "transitions_weight": getattr(recommender, "transitions_weight_", None),
        # per candidate weight; "valid" is the network alone
        "blend_validation": {str(w): brief(m) for w, m in getattr(recommender, "blend_validation_", {}).items()},
        # the blend's order and the re-ranked one on the validation step, 2-fold by user (rerank.py)
        "reranker": getattr(recommender, "ranker_", None) is not None,
        "rerank_validation": {name: brief(m) for name, m in getattr(recommender, "rerank_validation_", {}).items()},
    }


def _read_benchmark(data: Path, data_format: str):
    """(leave-one-out split, test histories, test targets, item texts or None) for a benchmark file or folder."""
    import numpy as np

    from shelfwise.datasets.formats import read_user_sequences
    from shelfwise.datasets.sequences import leave_one_out

    if data_format == "recbole-text":
        if not data.is_dir():
            raise click.BadParameter(f"{data} is not a folder; --format recbole-text reads a folder of RecBole atomic files "
                                     "(<name>.text, .item2index, .valid.inter, .test.inter)", param_hint="--data")
        from shelfwise.datasets.public import read_recbole_text

        try:
            text_data = read_recbole_text(data)
        except FileNotFoundError as e:
            raise click.BadParameter(f"{data}: missing {Path(e.filename).name} (--format recbole-text)", param_hint="--data") from None
        except ValueError as e:  # names the file and the line
            raise click.ClickException(str(e)) from None
        split = text_data.split
        return split, split.test_history, split.test_target, text_data.item_text["text"].fillna("").tolist()
    if data_format != "user-sequences":
        raise click.BadParameter(f"unknown format {data_format!r}; choose one of {DATA_FORMATS}", param_hint="--format")
    if data.is_dir():
        raise click.BadParameter(f"{data} is a folder; --format user-sequences reads one file (for a RecBole folder use "
                                 "--format recbole-text)", param_hint="--data")
    seqs = read_user_sequences(data)
    # Every user with a test item is tested (as the scorer counts them), also those too short to validate.
    testable = seqs.take(np.flatnonzero(seqs.lengths >= 2))
    return leave_one_out(seqs), testable.truncate(1), testable.last(1), None


def _held_out_items(n_items: int, share: float, seed: int):
    """bool [n_items + 1]: a seeded random ``share`` of the items, never the padding index 0."""
    import numpy as np

    if not 0 < share < 1:
        raise click.BadParameter(f"the share of cold items must lie between 0 and 1, got {share}", param_hint="--cold-items")
    held = np.zeros(n_items + 1, dtype=bool)
    held[1 + np.random.default_rng(seed).choice(n_items, size=max(1, round(share * n_items)), replace=False)] = True
    return held


def _without_items(seqs, drop):
    """``seqs`` with every occurrence of the items where ``drop`` [n_items + 1] is True removed."""
    import numpy as np

    from shelfwise.datasets.sequences import Sequences

    keep = ~drop[seqs.items]
    lengths = np.bincount(np.repeat(np.arange(len(seqs)), seqs.lengths)[keep], minlength=len(seqs))
    return Sequences(items=seqs.items[keep], offsets=np.r_[0, np.cumsum(lengths)], keys=seqs.keys, n_items=seqs.n_items,
                     item_ids=seqs.item_ids, times=None if seqs.times is None else seqs.times[keep], meta=dict(seqs.meta))


def _write_top_lists(path: Path, keys, top, item_ids) -> None:
    """TSV ``user_id, item_id, rank`` from top lists [n, k] of item indexes (0 = empty slot)."""
    import numpy as np

    users = np.repeat(np.asarray(keys).astype(str), top.shape[1])
    ranks = np.tile(np.arange(1, top.shape[1] + 1), len(top))
    shown = top.ravel() > 0  # 0 fills a list shorter than 100 (tiny catalogues)
    with open(path, "w") as f:
        f.write("user_id\titem_id\trank\n")
        f.writelines(f"{u}\t{i}\t{r}\n" for u, i, r in zip(users[shown], item_ids[top.ravel()[shown]], ranks[shown]))


def _write_user_sequences(path: Path, histories, targets, item_ids) -> None:
    """``user_id item_1 ... item_n`` per line: each history followed by its target (the scorer's DATA format)."""
    with open(path, "w") as f:
        for k in range(len(histories)):
            f.write(" ".join([str(histories.keys[k]), *item_ids[histories[k]], str(item_ids[targets[k]])]) + "\n")


def _session_validation(train, share: float):
    """(training sessions, validation histories, validation targets): the last item of the last ``share`` of the
    sessions of 2+ items (in file order: the SR-GNN files list sessions by time) is held out for choosing the
    epoch. A tenth keeps validation cheap (full ranking over ~40k items per case) and close to the test period."""
    import numpy as np

    from shelfwise.recommenders.neural import _drop_last_of

    candidates = np.flatnonzero(train.lengths >= 2)
    rows = candidates[len(candidates) - max(1, round(share * len(candidates))):]
    held = train.take(rows)
    return _drop_last_of(train, rows), held.truncate(1), held.last(1)


def run_session_benchmark(data: Path, model: str, out: Path, overrides: dict[str, dict] | None = None, epochs: int | None = None,
                          seed: int = 0, threads: int = 2, progress: bool = True, valid_share: float = 0.1) -> dict:
    """Session-based benchmark on a folder with ``train_sessions.txt`` and ``test_prefix_target.tsv``
    (Diginetica, Tmall): train on the training sessions, then predict the next item of every test
    prefix (each position of each test session, as the files give them) by full ranking over all items.
    Items already in the session stay in the lists (sessions repeat items; the usual protocol).
    Neural models choose their epoch on the last item of the last ``valid_share`` of the training
    sessions, held out of training. Writes ``out/metrics.json`` (HR / MRR / NDCG @10 and @20),
    ``out/report.html`` and the trained model under ``out/model``."""
    import numpy as np
    import torch

    from shelfwise.datasets.public import read_sessions
    from shelfwise.evaluation.metrics import evaluate_ranking

    started = time.time()
    load_at_start = os.getloadavg()
    torch.set_num_threads(threads)
    data, out = Path(data), Path(out)
    missing = [name for name in ("train_sessions.txt", "test_prefix_target.tsv") if not (data / name).is_file()]
    if missing:
        raise click.BadParameter(f"{data} has no {' or '.join(missing)}: expected a session folder "
                                 "(train_sessions.txt: one session per line; test_prefix_target.tsv: 'prefix<TAB>target')",
                                 param_hint="--data")
    try:
        sessions = read_sessions(data)
    except ValueError as e:  # names the file and the line
        raise click.ClickException(str(e)) from None
    out.mkdir(parents=True, exist_ok=True)
    recommender = make_recommender(model, overrides or _parse_overrides(()), epochs, seed, progress, None)
    valid_target = np.zeros(0)
    if hasattr(recommender, "mask_history"):
        recommender.mask_history = False
        train, valid_history, valid_target = _session_validation(sessions.train, valid_share)
        recommender.fit(train, valid_history, valid_target)
    else:  # baselines have nothing to select: they see every training session whole
        recommender.fit(sessions.train)
    fit_seconds = time.time() - started
    t0 = time.time()
    test_metrics, _ = evaluate_ranking(recommender.score, sessions.test_prefix, sessions.test_target, ks=(10, 20), mask_history=False)
    result = getattr(recommender, "result_", None)
    n_epochs = result.epochs_run if result else 0
    metrics = {
        "data": str(data.resolve()),
        "model": model,
        "train_sessions": len(sessions.train),
        "train_events": int(len(sessions.train.items)),
        "items": sessions.train.n_items,
        "test_cases": len(sessions.test_prefix),
        "protocol": {
            "task": "next item of every test prefix (test_prefix_target.tsv)",
            "ranking": "full ranking over all items; items already in the session are not removed",
            "selection": f"epoch with the best validation ndcg@10 on the last item of the last {valid_share:.0%} of the "
                         "training sessions (held out of training)" if result else "none (baseline)",
            "valid_cases": len(valid_target),
        },
        **_scoring_summary(recommender),
        "valid": result.best_metrics if result else {},
        "test": test_metrics,
        **_training_summary(result, n_epochs),
        "fit_seconds": fit_seconds,
        "test_seconds": time.time() - t0,
    }
    _finish(metrics, out, recommender, model, data, metrics["valid"], test_metrics, result.history if result else [], started,
            load_at_start, threads)
    return metrics


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="user-sequences: a file, one user per line 'user_id item_1 ... item_n' in time order; "
                   "recbole-text: a folder of RecBole atomic files with item text.")
@click.option("--format", "data_format", default="user-sequences", show_default=True, type=click.Choice(DATA_FORMATS))
@click.option("--model", default="sasrec", show_default=True, type=click.Choice(MODEL_NAMES))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for metrics.json and test_top100.tsv.")
@click.option("--epochs", type=int, default=None, help="Override the number of epochs.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a setting, e.g. model.hidden=64, train.lr=0.002, loss.name=sampled, loss.n_negatives=512, "
                   "loss.future_window=1 (learn the next item only).")
@item_text_options
@click.option("--cold-items", type=float, default=0.0, show_default=True,
              help="Share of items (seeded) removed from training, to measure recommending items with no history.")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--keep-history", is_flag=True, help="Do not leave the user's history items out of the lists.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints after a crash.")
@click.option("--refit-epochs", default=REFIT_EPOCHS, show_default=True, type=click.IntRange(min=0),
              help="After the epoch is selected, train the network this many more epochs on the test histories "
                   "(item transitions are always recounted on them).")
@click.pass_obj
def sequential(obj: Settings, data: Path, data_format: str, model: str, out: Path, epochs: int | None, settings: tuple[str, ...],
               item_repr: str | None, item_text: str, item_text_steps: int, cold_items: float, seed: int, threads: int, keep_history: bool, resume: bool,
               refit_epochs: int) -> None:
    """Next-item benchmark on a per-user sequence file or a RecBole text folder (leave-one-out, full ranking)."""
    quiet = bool(getattr(obj, "quiet", False))
    overrides = _parse_overrides(settings)
    if item_repr is not None:
        overrides["model"]["item_repr"] = item_repr
    home = getattr(obj, "home", None)
    m = run_sequential_benchmark(data, model, out, overrides, epochs, seed, threads, mask_history=not keep_history, progress=not quiet,
                                 resume=resume, data_format=data_format, cold_items=cold_items,
                                 cache_dir=Path(home) / "cache" if home else None, refit_epochs=refit_epochs, item_text=item_text,
                                 item_text_steps=item_text_steps)
    if not m:  # a torchrun worker other than rank 0
        return
    t = m["test"]
    click.echo(f"{model} on {data.name}: test HR@10 {t['hr@10']:.4f} NDCG@10 {t['ndcg@10']:.4f} "
               f"(valid NDCG@10 {m['valid']['ndcg@10']:.4f}; best epoch {m['best_epoch']}/{m['epochs']}; "
               f"{m['seconds_per_epoch']:.1f} s/epoch; {m['total_seconds']:.0f} s total) -> {out}")
    cold = m["test_cold"]
    if cold["cases"]:
        click.echo(f"  cold targets (never in training): {cold['cases']} cases, HR@10 {cold['hr@10']:.4f} "
                   f"(random {cold['random_hr@10']:.4f})")


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A session folder: train_sessions.txt and test_prefix_target.tsv.")
@click.option("--model", default="gru4rec", show_default=True, type=click.Choice(MODEL_NAMES))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for metrics.json.")
@click.option("--epochs", type=int, default=None, help="Override the number of epochs.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a setting (see bench sequential).")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.pass_obj
def sessions(obj: Settings, data: Path, model: str, out: Path, epochs: int | None, settings: tuple[str, ...], seed: int,
             threads: int) -> None:
    """Session-based benchmark: next item of every test session prefix, HR@20 / MRR@20 over all items."""
    m = run_session_benchmark(data, model, out, _parse_overrides(settings), epochs, seed, threads,
                              progress=not bool(getattr(obj, "quiet", False)))
    t = m["test"]
    click.echo(f"{model} on {data.name}: test HR@20 {t['hr@20']:.4f} MRR@20 {t['mrr@20']:.4f} ({m['test_cases']:,} cases; "
               f"best epoch {m['best_epoch']}/{m['epochs']}; {m['total_seconds']:.0f} s total) -> {out}")


@click.command()
@click.option("--model", default="sasrec", show_default=True, type=click.Choice(MODEL_NAMES))
@click.option("--epochs", type=int, default=None, help="Override the number of epochs.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a setting (see bench sequential).")
@item_text_options
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.pass_obj
def recommender(obj: Settings, model: str, epochs: int | None, settings: tuple[str, ...], item_repr: str | None, item_text: str,
                item_text_steps: int, seed: int, threads: int) -> None:
    """Train a next-item recommender on the users' event sequences in the store.

    Leave-one-out: the last item per user is held out for the test, the one before for
    validation (epoch selection). The model is saved to <home>/artifacts/<model>. Every catalogue
    item has a row in the model; with --item-repr text or text+id, items no one has touched yet
    are scored by their text (title, brand, category, description)."""
    import numpy as np
    import torch

    from shelfwise.datasets.sequences import leave_one_out
    from shelfwise.datasets.store_data import catalogue_texts, user_sequences
    from shelfwise.evaluation.metrics import evaluate_ranking
    from shelfwise.store import Store

    torch.set_num_threads(threads)
    overrides = _parse_overrides(settings)
    if item_repr is not None:
        overrides["model"]["item_repr"] = item_repr
    item_repr = _item_repr(model, overrides, item_text)
    store = Store.open(obj)
    seqs = user_sequences(store)
    split = leave_one_out(seqs)
    if len(split.test_target) == 0:
        raise click.ClickException("no user in the store has 3 or more item events; nothing to train on")
    rec = make_recommender(model, overrides, epochs, seed, not obj.quiet, None)
    if item_repr != "id":
        attach_item_text(rec, item_text, catalogue_texts(store, seqs.item_ids[1:]), split, obj.home / "cache", item_text_steps,
                         not obj.quiet)
    if hasattr(rec, "train_config"):
        rec.fit(split.train, split.valid_history, split.valid_target)
    else:
        rec.fit(split.train)
    test, _ = evaluate_ranking(rec.score, split.test_history, split.test_target)
    if hasattr(rec, "partial_fit"):  # the served model learns from every user's latest events too
        rec.partial_fit(seqs, epochs=1)
    if hasattr(rec, "save"):
        artifact = rec.save(obj.artifacts / model, {"test": test, "users": len(split.test_target)})
        where = f" -> {artifact.path}"
    else:
        where = " (baselines are not saved)"
    click.echo(f"{model}: {len(split.test_target):,} users, {seqs.n_items:,} items; "
               f"test HR@10 {test['hr@10']:.4f} NDCG@10 {test['ndcg@10']:.4f}{where}")
    if item_repr != "id":
        untouched = seqs.n_items - len(np.unique(seqs.items))
        click.echo(f"  item vectors from text ({item_repr}): {untouched:,} catalogue items without events are recommended by their text")


BENCH = [sequential, sessions]
TRAIN = [recommender]
