"""Multimodal commands: ``shelfwise bench multimodal`` (train + measure the photo <-> name
alignment and the item fusion on the fashion data), the photo search behind ``shelfwise search
run --model <multimodal model>`` (a catalogue of photos and/or names searched by text or by
photo) and ``shelfwise search voice`` (spoken queries).

Heavy imports (torch, the encoders) happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from shelfwise.config import Settings

SEARCH_MODES = ("keyword", "semantic", "hybrid")  # shelfwise.search.engine.MODES, kept literal for --help


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@click.command("multimodal")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="The fashion folder (images_manifest.csv, styles_full.csv, images/).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Writes OUT/metrics.json and the trained model to OUT/model.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), help="Folder for encoder outputs (default OUT/cache); reused across runs.")
@click.option("--test-size", type=click.IntRange(10), default=2000, show_default=True, help="Photos in the evaluation catalogue (never used in training).")
@click.option("--extra-names", type=click.IntRange(0), default=20000, show_default=True, help="Names of products without a photo used for the text side (0 = none).")
@click.option("--no-ablations", is_flag=True, help="Train only the full alignment model, not the variants that show what each part adds.")
@click.option("--tune-image", is_flag=True, help="Also fine-tune the image backbone's last blocks with the alignment (a variant chosen on validation like the others).")
@click.option("--tune-photos", is_flag=True, help="First fine-tune the whole image backbone on the training photos' article type, colour and gender "
              "(~20 min on 2 threads); every variant reads its features and the saved model serves it.")
@click.option("--weight-folds", type=click.IntRange(0), default=5, show_default=True,
              help="Choose the chosen model's retrieval weights on its training pairs cross-fitted over this many folds (one more fit each); "
              "0 = the weights the validation pairs chose.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="torch CPU threads.")
@click.pass_obj
def multimodal(obj: Settings, data: Path, out: Path, cache: Path | None, test_size: int, extra_names: int, no_ablations: bool, tune_image: bool,
               tune_photos: bool, weight_folds: int, seed: int, threads: int) -> None:
    """Train the text <-> image alignment and fusion on part of the photos; measure on the rest."""
    _threads(threads)
    from shelfwise.multimodal.benchmark import BenchConfig, run
    from shelfwise.multimodal.photo_tuning import PhotoTuningConfig

    config = BenchConfig(test_size=test_size, extra_texts=extra_names, ablations=not no_ablations, tune_image=tune_image, seed=seed,
                         weight_folds=weight_folds, photo_tuning=PhotoTuningConfig(seed=seed) if tune_photos else None)
    try:
        results = run(data, out, config, cache_dir=cache, progress=not obj.quiet, log=(lambda *_: None) if obj.quiet else click.echo)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    summary = {k: results[k] for k in ("alignment", "fusion_selected", "throughput", "artifact")}
    click.echo(json.dumps(summary, indent=2))


def multimodal_search_rows(products: Path, model: Path, queries: list[str], images: list[Path], top: int, progress: bool = False) -> tuple[list[list], dict[str, str]]:
    """Rank a photo and/or name catalogue for text queries and query photos through the aligned space.

    Returns TSV rows (query, product_id, rank, score, title) and the catalogue items that were
    skipped (unreadable photo, nothing to index) with the reason. ``shelfwise search run`` comes
    here when its ``--model`` is a multimodal model.
    """
    from shelfwise.multimodal.model import MultimodalModel
    from shelfwise.multimodal.search import MultimodalSearch, read_catalogue

    items = read_catalogue(products)
    engine = MultimodalSearch(MultimodalModel.load(model), progress=progress).fit(items)
    rows = []
    pages = list(zip(queries, engine.search_text(queries, top=top))) if queries else []
    if images:
        pages += list(zip([str(p) for p in images], engine.search_images(images, top=top)))
    for query, page in pages:
        for rank, hit in enumerate(page.hits, start=1):
            rows.append([query, hit.item_id, rank, f"{hit.score:.6f}", engine.titles.get(hit.item_id, "")])
    return rows, engine.skipped


@click.command("voice")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--products", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Products CSV (as for `search run`); a catalogue of photos only needs --model.")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path), help="A multimodal model: search the catalogue through the aligned text/photo space.")
@click.option("--mode", type=click.Choice(SEARCH_MODES), default="hybrid", show_default=True, help="Text search mode (without --model).")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True)
@click.option("--beam-size", type=click.IntRange(1), default=5, show_default=True, help="Whisper beam size (1 = greedy, faster).")
@click.option("--no-vocabulary", is_flag=True, help="Do not prompt Whisper with the catalogue's words.")
@click.option("--no-correction", is_flag=True, help="Do not spell-correct transcripts against the catalogue's words.")
@click.option("--no-biasing", is_flag=True, help="Search Whisper's best transcript instead of the likeliest catalogue phrasing of what was heard.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="CPU threads for speech recognition and torch.")
@click.pass_obj
def voice(obj: Settings, files: tuple[Path, ...], products: Path, model: Path | None, mode: str, top: int, beam_size: int, no_vocabulary: bool, no_correction: bool, no_biasing: bool, threads: int) -> None:
    """Transcribe spoken queries (WAV / MP3 / OGG) and search with them; prints one JSON line per
    file: the transcript, the searched query, timings and the results."""
    _threads(threads)
    from shelfwise.encoders.audio import AudioReadError, SpeechConfig, SpeechRecognizer, vocabulary_prompt
    from shelfwise.multimodal.voice import CatalogueBiasing, VoiceSearch

    try:
        if model is not None:
            from shelfwise.multimodal.model import MultimodalModel
            from shelfwise.multimodal.search import MultimodalSearch, read_catalogue

            items = read_catalogue(products)
            engine = MultimodalSearch(MultimodalModel.load(model)).fit(items)
            search_function, titles = engine.search_text, engine.titles
        else:
            from shelfwise.encoders.text import TextEncoder
            from shelfwise.search.engine import SearchEngine, read_products

            items = read_products(products)
            text_engine = SearchEngine(TextEncoder(), cache_dir=obj.home / "search" / "indexes", progress=False).fit(items)
            search_function = lambda queries, k: text_engine.search_many(queries, mode=mode, top=k)  # noqa: E731
            titles = dict(zip(items["item_id"].astype(str), items["title"].astype(str)))
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    categories = items["category"] if "category" in items else []
    prompt = None if no_vocabulary else vocabulary_prompt(items["title"], categories)
    corrector = None
    if not no_correction:
        from shelfwise.search.suggest import SpellingCorrector

        corrector = SpellingCorrector().fit(list(items["title"]) + list(categories))
    biasing = None if no_biasing else CatalogueBiasing().fit(list(items["title"]) + list(categories))
    searcher = VoiceSearch(search_function, SpeechRecognizer(SpeechConfig(beam_size=beam_size, cpu_threads=threads, prompt=prompt)), corrector, biasing)
    failed = 0
    for path in files:
        try:
            result = searcher.search(path, top=top)
        except AudioReadError as e:
            # One unreadable clip does not stop the others.
            click.echo(f"Error: {e}", err=True)
            failed += 1
            continue
        click.echo(json.dumps({
            "file": str(path),
            "transcript": result.transcript.text,
            "query": result.query,
            "audio_seconds": round(result.transcript.audio_seconds, 3),
            "real_time_factor": round(result.transcript.real_time_factor, 3),
            "results": [{"rank": r, "product_id": h.item_id, "score": round(h.score, 6), "title": titles.get(h.item_id, "")} for r, h in enumerate(result.page.hits, start=1)],
        }))
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} audio files could not be read")


BENCH = [multimodal]
SEARCH = [voice]


if __name__ == "__main__":
    # `python -m shelfwise.commands.multimodal ...` works before the commands are wired into `shelfwise`.
    from shelfwise.config import settings

    @click.group()
    def _standalone() -> None:
        """Multimodal commands (stand-alone entry point)."""

    for command in BENCH + SEARCH:
        _standalone.add_command(command)
    _standalone(obj=settings())
