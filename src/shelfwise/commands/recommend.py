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
    """``model.hidden=64`` / ``train.lr=0.002`` / ``loss.label_smoothing=0.1`` -> {"model": {...}, ...}.
    Values are JSON (numbers, true/false, lists), else strings."""
    out: dict[str, dict] = {"model": {}, "train": {}, "loss": {}}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in out:
            raise click.BadParameter(f"expected model.KEY=VALUE, train.KEY=VALUE or loss.KEY=VALUE, got {pair!r}", param_hint="--set")
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
    return SequentialRecommender(model=model, model_config=overrides["model"], loss=LossConfig(**overrides["loss"]),
                                 train_config=train_config)


def run_sequential_benchmark(data: Path, model: str, out: Path, overrides: dict[str, dict] | None = None, epochs: int | None = None,
                             seed: int = 0, threads: int = 2, mask_history: bool = True, progress: bool = True, resume: bool = False) -> dict:
    """Leave-one-out benchmark: train on all but the last two items per user, select the epoch by
    validation NDCG@10, then rank every item for each user's test step from the history before
    the test item. Writes ``out/metrics.json``, ``out/test_top100.tsv``, ``out/report.html`` and the
    trained model under ``out/model``; returns the metrics dict."""
    import resource

    import numpy as np
    import torch

    from shelfwise.datasets.formats import read_user_sequences
    from shelfwise.datasets.sequences import leave_one_out
    from shelfwise.evaluation.metrics import evaluate_ranking
    from shelfwise.evaluation.report import write_report

    from shelfwise.training import distributed

    started = time.time()
    load_at_start = os.getloadavg()
    torch.set_num_threads(threads)
    distributed.init()  # under torchrun: every process trains on its share, rank 0 evaluates and writes
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoints = out / "checkpoints"
    if not resume and checkpoints.exists() and distributed.is_main():
        import shutil

        shutil.rmtree(checkpoints, ignore_errors=True)
    seqs = read_user_sequences(data)
    split = leave_one_out(seqs)
    # Every user with a test item is tested (as the scorer counts them), also those too short to validate.
    testable = seqs.take(np.flatnonzero(seqs.lengths >= 2))
    test_history, test_target = testable.truncate(1), testable.last(1)

    recommender = make_recommender(model, overrides or {"model": {}, "train": {}, "loss": {}}, epochs, seed, progress,
                                   str(checkpoints))
    if hasattr(recommender, "mask_history"):
        recommender.mask_history = mask_history
        recommender.fit(split.train, split.valid_history, split.valid_target)
    else:
        recommender.fit(split.train)
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
    top = top[:, :100].numpy()
    item_ids = seqs.item_ids
    users = np.repeat(testable.keys.astype(str), top.shape[1])
    ranks = np.tile(np.arange(1, top.shape[1] + 1), len(top))
    shown = top.ravel() > 0  # 0 fills a list shorter than 100 (tiny catalogues)
    with open(out / "test_top100.tsv", "w") as f:
        f.write("user_id\titem_id\trank\n")
        f.writelines(f"{u}\t{i}\t{r}\n" for u, i, r in zip(users[shown], item_ids[top.ravel()[shown]], ranks[shown]))

    history = result.history if result else []
    n_epochs = result.epochs_run if result else 0
    metrics = {
        "data": str(Path(data).resolve()),
        "model": model,
        "users": len(seqs),
        "items": seqs.n_items,
        "interactions": int(len(seqs.items)),
        "protocol": {
            "split": "leave-one-out: last item = test, second last = validation",
            "ranking": "full ranking over all items",
            "mask_history": mask_history,
            "selection": "epoch with the best validation ndcg@10",
            "test_users": len(testable),
        },
        "valid": valid_metrics,
        "test": test_metrics,
        "epochs": n_epochs,
        "best_epoch": (result.best_epoch + 1) if result else 0,
        "stopped": result.stopped if result else "",
        "seconds_per_epoch": (result.train_seconds / n_epochs) if n_epochs else 0.0,
        "eval_seconds_per_epoch": (result.eval_seconds / n_epochs) if n_epochs else 0.0,
        "fit_seconds": fit_seconds,
        "test_seconds": test_seconds,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "config": recommender.config() if hasattr(recommender, "config") else {"model": model},
        "machine": {"cpus": os.cpu_count(), "threads": threads, "processes": distributed.world_size(), "torch": torch.__version__,
                    "load_average_at_start": load_at_start},
        "history": history,
    }
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
    return metrics


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="One user per line: 'user_id item_1 ... item_n' in time order.")
@click.option("--model", default="sasrec", show_default=True, type=click.Choice(MODEL_NAMES))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for metrics.json and test_top100.tsv.")
@click.option("--epochs", type=int, default=None, help="Override the number of epochs.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a setting, e.g. model.hidden=64, train.lr=0.002, loss.name=sampled, loss.n_negatives=512.")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--keep-history", is_flag=True, help="Do not leave the user's history items out of the lists.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints after a crash.")
@click.pass_obj
def sequential(obj: Settings, data: Path, model: str, out: Path, epochs: int | None, settings: tuple[str, ...], seed: int,
               threads: int, keep_history: bool, resume: bool) -> None:
    """Next-item benchmark on a per-user sequence file (leave-one-out, full ranking)."""
    quiet = bool(getattr(obj, "quiet", False))
    m = run_sequential_benchmark(data, model, out, _parse_overrides(settings), epochs, seed, threads,
                                 mask_history=not keep_history, progress=not quiet, resume=resume)
    if not m:  # a torchrun worker other than rank 0
        return
    t = m["test"]
    click.echo(f"{model} on {data.name}: test HR@10 {t['hr@10']:.4f} NDCG@10 {t['ndcg@10']:.4f} "
               f"(valid NDCG@10 {m['valid']['ndcg@10']:.4f}; best epoch {m['best_epoch']}/{m['epochs']}; "
               f"{m['seconds_per_epoch']:.1f} s/epoch; {m['total_seconds']:.0f} s total) -> {out}")


@click.command()
@click.option("--model", default="sasrec", show_default=True, type=click.Choice(MODEL_NAMES))
@click.option("--epochs", type=int, default=None, help="Override the number of epochs.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a setting (see bench sequential).")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.pass_obj
def recommender(obj: Settings, model: str, epochs: int | None, settings: tuple[str, ...], seed: int, threads: int) -> None:
    """Train a next-item recommender on the users' event sequences in the store.

    Leave-one-out: the last item per user is held out for the test, the one before for
    validation (epoch selection). The model is saved to <home>/artifacts/<model>."""
    import torch

    from shelfwise.datasets.sequences import leave_one_out
    from shelfwise.datasets.store_data import user_sequences
    from shelfwise.evaluation.metrics import evaluate_ranking
    from shelfwise.store import Store

    torch.set_num_threads(threads)
    seqs = user_sequences(Store.open(obj))
    split = leave_one_out(seqs)
    if len(split.test_target) == 0:
        raise click.ClickException("no user in the store has 3 or more item events; nothing to train on")
    rec = make_recommender(model, _parse_overrides(settings), epochs, seed, not obj.quiet, None)
    if hasattr(rec, "train_config"):
        rec.fit(split.train, split.valid_history, split.valid_target)
    else:
        rec.fit(split.train)
    test, _ = evaluate_ranking(rec.score, split.test_history, split.test_target)
    if hasattr(rec, "save"):
        artifact = rec.save(obj.artifacts / model, {"test": test, "users": len(split.test_target)})
        where = f" -> {artifact.path}"
    else:
        where = " (baselines are not saved)"
    click.echo(f"{model}: {len(split.test_target):,} users, {seqs.n_items:,} items; "
               f"test HR@10 {test['hr@10']:.4f} NDCG@10 {test['ndcg@10']:.4f}{where}")


BENCH = [sequential]
TRAIN = [recommender]
