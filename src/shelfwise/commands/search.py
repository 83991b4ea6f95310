"""``shelfwise search run`` (rank a catalogue for a file of queries), ``shelfwise search finetune`` and
``shelfwise search export-onnx``."""

from __future__ import annotations

from pathlib import Path

import click

from shelfwise.config import Settings

MODES = ("keyword", "semantic", "hybrid", "hybrid-rerank")
TARGETS = ("bi-encoder", "cross-encoder")
# Kept literal so `--help` needs no torch/peft import; tests check they match the registries.
METHOD_NAMES = ("full", "lora", "adalora", "ia3", "prefix")
ADVERSARY_NAMES = ("none", "fgm", "pgd")
FUSIONS = ("rrf", "weighted")


def _read_queries(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    # One query per line; repeated lines would only repeat the same ranking.
    return list(dict.fromkeys(q.replace("\t", " ") for q in lines if q))


@click.group()
def search() -> None:
    """Product search: rank the catalogue for queries, fine-tune the text encoder."""


@search.command()
@click.option("--products", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV with product_id (or item_id), title and optional description, category, brand, price, in_stock; with a multimodal --model, a title and/or an image (photo path) per product.")
@click.option("--queries", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Text file, one query per line.")
@click.option("--image", "images", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A query photo (repeatable): search by photo; needs a multimodal --model.")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Fine-tuned encoder (a `search finetune --out` folder), an ONNX export (`search export-onnx --out`), or a multimodal model (`bench multimodal` writes OUT/model: search photos by text, and by --image); default the pretrained MiniLM.")
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--reranker", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Trained cross-encoder (`search finetune --target cross-encoder --out`) or its `search export-onnx` folder, for --mode hybrid-rerank.")
@click.option("--rerank-top", type=click.IntRange(1), default=20, show_default=True, help="How many hybrid hits the reranker reorders.")
@click.option("--first-stage-weight", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Reorder the top N by the cross-encoder's score plus this weight times the hybrid score (both standardised per query); 0: the cross-encoder alone.")
@click.option("--fusion", type=click.Choice(FUSIONS), default="weighted", show_default=True, help="How hybrid mode fuses the two rankings.")
@click.option("--keyword-weight", type=float, default=1.0, show_default=True, help="Hybrid weight of the keyword ranking.")
@click.option("--semantic-weight", type=float, default=0.5, show_default=True, help="Hybrid weight of the semantic ranking.")
@click.option("--fusion-model", type=click.Path(exists=True, file_okay=False, path_type=Path), help="A learned fusion (`search fit-fusion --out`) that reorders the hybrid top; fit it with the same --model.")
@click.option("--synonyms", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Learned synonyms (`search fit-synonyms --out`) that keyword search also searches.")
@click.option("--rrf-k", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True, help="RRF's k: larger flattens the difference between ranks.")
@click.option("--top", type=click.IntRange(1), default=100, show_default=True, help="Results per query.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="TSV: query, product_id, rank, score.")
@click.option("--no-cache", is_flag=True, help="Do not keep or reuse built indexes in <home>/search/indexes.")
@click.pass_obj
def run(obj: Settings, products: Path, queries: Path | None, images: tuple[Path, ...], model: Path | None, mode: str, reranker: Path | None, rerank_top: int, first_stage_weight: float, fusion: str, keyword_weight: float, semantic_weight: float, fusion_model: Path | None, synonyms: Path | None, rrf_k: float, top: int, out: Path, no_cache: bool) -> None:
    """Rank the products for every query in QUERIES (and every --image) and write the top results as TSV."""
    from shelfwise.encoders import load_text_encoder
    from shelfwise.multimodal.model import is_multimodal_model
    from shelfwise.search.engine import read_products
    from shelfwise.search.learned_fusion import LearnedFusion

    if not queries and not images:
        raise click.UsageError("give --queries FILE and/or --image PATH")
    if model is not None and is_multimodal_model(model):
        return _run_multimodal(obj, products, queries, images, model, top, out)
    if images:
        raise click.ClickException("--image searches by photo through a multimodal model: pass --model OUT/model "
                                   "(train one with `shelfwise bench multimodal --data ... --out OUT`)")

    try:
        items = read_products(products)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    query_list = _read_queries(queries)
    if mode == "hybrid-rerank" and reranker is None:
        raise click.ClickException("--mode hybrid-rerank needs --reranker DIR (train one with `search finetune --target cross-encoder`)")
    try:
        encoder, encoder_id = load_text_encoder(model)
        learned = LearnedFusion.load(fusion_model) if fusion_model else None
        keyword_options = _keyword_options(synonyms)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    engine = _engine(obj, encoder, encoder_id, no_cache, fusion=fusion, weights=(keyword_weight, semantic_weight), rrf_k=rrf_k,
                     candidates=max(100, top), learned_fusion=learned, keyword_options=keyword_options,
                     reranker=_load_reranker(reranker, rerank_top, first_stage_weight) if reranker else None).fit(items)
    pages = engine.search_many(query_list, mode=mode, top=top)
    _write_run(out, [[query, hit.item_id, rank, f"{hit.score:.6f}"]
                     for query, page in zip(query_list, pages) for rank, hit in enumerate(page.hits, start=1)])
    if not obj.quiet:
        click.echo(f"{len(query_list)} queries, {len(items):,} products, mode {mode}: wrote {out}")


@search.command()
@click.option("--products", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Products CSV (as for `search run`); without it and --judgments, the store's catalogue.")
@click.option("--judgments", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV query,product_id,relevance (1..3, Home Depot format); without it and --products, the store's search logs.")
@click.option("--target", type=click.Choice(TARGETS), default="bi-encoder", show_default=True, help="The retrieval encoder, or the cross-encoder reranker (MiniLM + new head).")
@click.option("--method", type=click.Choice(METHOD_NAMES), default="lora", show_default=True, help="Which weights to train: all (full) or a PEFT adapter.")
@click.option("--adversarial", type=click.Choice(ADVERSARY_NAMES), default="none", show_default=True, help="Adversarial training on the embedding layer.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder: each run adds a version; `latest` points at the newest.")
@click.option("--max-steps", type=click.IntRange(1), default=300, show_default=True)
@click.option("--batch-size", type=click.IntRange(2), help="Pairs per step (default: 32 for the bi-encoder, 48 for the cross-encoder: 3 query lists of 16).")
@click.option("--lr", "learning_rate", type=float, help="Learning rate (default: the method's own).")
@click.option("--negatives", type=click.IntRange(0), default=1, show_default=True, help="Bi-encoder: hard negatives per pair in a batch.")
@click.option("--hard-negatives", default="bm25", show_default=True, help="Miners of hard negatives, comma-separated: bm25, model.")
@click.option("--valid-fraction", type=click.FloatRange(0.01, 0.5), default=0.125, show_default=True, help="Share of the queries held out for validation and early stopping.")
@click.option("--eval-every", type=click.IntRange(1), default=50, show_default=True, help="Steps between validation NDCG@10 checks.")
@click.option("--patience", type=click.IntRange(1), default=3, show_default=True, help="Checks without improvement before stopping early.")
@click.option("--valid-queries", type=click.IntRange(1), default=200, show_default=True, help="Validation queries scored at each check (their judged items + BM25 top 30 form the pool).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_obj
def finetune(obj: Settings, products: Path | None, judgments: Path | None, target: str, method: str, adversarial: str, out: Path, max_steps: int, batch_size: int, learning_rate: float | None, negatives: int, hard_negatives: str, valid_fraction: float, eval_every: int, patience: int, valid_queries: int, seed: int) -> None:
    """Fine-tune MiniLM on relevance judgments: the bi-encoder (contrastive, in-batch + hard negatives)
    or the cross-encoder reranker (graded relevance loss). Without --products and --judgments, on
    the shop's own store: its catalogue, and judgments from its logs (items clicked, carted or
    bought after a search are relevant; items shown and skipped are not)."""
    import json
    import resource

    from shelfwise.tuning.bi_encoder import BiEncoderConfig, BiEncoderTuner
    from shelfwise.tuning.cross_encoder import CrossEncoderConfig, CrossEncoderTuner
    from shelfwise.tuning.judgments import split_by_query
    from shelfwise.tuning.methods import get_method

    try:
        items, judged, source = _training_data(obj, products, judgments)
        if target == "cross-encoder":
            if adversarial != "none":
                raise ValueError("--adversarial applies to the bi-encoder only")
            config = CrossEncoderConfig(
                method=method, max_steps=max_steps, eval_every=eval_every, patience=patience, seed=seed, valid_queries=valid_queries,
                **({"batch_size": batch_size} if batch_size else {}), **({"learning_rate": learning_rate} if learning_rate else {}),
            )
            if not get_method(method).mergeable:
                raise ValueError(f"--method {method} cannot be merged into the reranker; use full, lora, adalora or ia3")
            tuner_class = CrossEncoderTuner
        else:
            config = BiEncoderConfig(
                method=method, adversarial=adversarial, max_steps=max_steps, batch_size=batch_size or 32, learning_rate=learning_rate,
                negatives=negatives, hard_negative_miners=tuple(m.strip() for m in hard_negatives.split(",") if m.strip()),
                eval_every=eval_every, patience=patience, seed=seed, valid_queries=valid_queries,
            )
            tuner_class = BiEncoderTuner
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    # A salt of its own: this split is independent of any split the judgments file came from.
    parts = split_by_query(judged, {"train": 1 - valid_fraction, "valid": valid_fraction}, salt="shelfwise-finetune")
    if parts["train"].empty or parts["valid"].empty:
        raise click.ClickException(f"{source}: too few queries to hold out {valid_fraction:.0%} for validation")
    tuner = tuner_class(config, progress=not obj.quiet).fit(items, parts["train"], parts["valid"])
    artifact = tuner.save(out)
    metrics = {k: v for k, v in tuner.metrics.items() if k != "history"}
    # The whole process's peak: the keyword index and mining included, as a user would see it.
    metrics["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    click.echo(json.dumps({"artifact": str(artifact.path), **metrics}, indent=2))


@search.command()
@click.option("--products", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Products CSV (as for `search run`).")
@click.option("--past-queries", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Text file of past queries, one per line (repeats count).")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True)
@click.argument("prefixes", nargs=-1, required=True)
@click.pass_obj
def suggest(obj: Settings, products: Path, past_queries: Path | None, top: int, prefixes: tuple[str, ...]) -> None:
    """Autocomplete suggestions and the spelling-corrected query for each PREFIX (JSON lines)."""
    import json

    from shelfwise.search.engine import read_products
    from shelfwise.search.suggest import QuerySuggester

    try:
        items = read_products(products)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    history = past_queries.read_text(encoding="utf-8").splitlines() if past_queries else []
    suggester = QuerySuggester().fit(items["title"], history)
    for prefix in prefixes:
        click.echo(json.dumps({"prefix": prefix, "corrected": suggester.corrector.correct(prefix), "suggestions": suggester.suggest(prefix, top=top)}))


@search.command("fit-fusion")
@click.option("--products", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Products CSV (as for `search run`); without it and --judgments, the store's catalogue.")
@click.option("--judgments", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV query,product_id,relevance (1..3); best on queries the --model did not train on. Without it and --products, the store's search logs.")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path), help="The text encoder the fusion will serve with (as for `search run`); default the pretrained MiniLM.")
@click.option("--fusion", type=click.Choice(FUSIONS), default="weighted", show_default=True, help="The fusion whose top is reordered.")
@click.option("--keyword-weight", type=float, default=1.0, show_default=True)
@click.option("--semantic-weight", type=float, default=0.5, show_default=True)
@click.option("--synonyms", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Learned synonyms (`search fit-synonyms --out`) to search with, as they will be served.")
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Model folder: each run adds a version; `latest` points at the newest. Default <home>/artifacts/search-fusion, where the API finds it.")
@click.option("--no-cache", is_flag=True, help="Do not keep or reuse built indexes in <home>/search/indexes.")
@click.pass_obj
def fit_fusion(obj: Settings, products: Path | None, judgments: Path | None, model: Path | None, fusion: str, keyword_weight: float,
               semantic_weight: float, synonyms: Path | None, epochs: int, seed: int, out: Path | None, no_cache: bool) -> None:
    """Learn a fusion of keyword and semantic search from relevance judgments: a linear model over
    both retrievers' scores and ranks and the query's word coverage reorders the hybrid top
    (`search run --fusion-model OUT`). Prints a JSON report."""
    import json

    from shelfwise.encoders import load_text_encoder
    from shelfwise.search.learned_fusion import ARTIFACT_NAME, FEATURES, LearnedFusion, fit_learned_fusion

    try:
        items, judged, source = _training_data(obj, products, judgments)
        encoder, encoder_id = load_text_encoder(model)
        engine = _engine(obj, encoder, encoder_id, no_cache, fusion=fusion, weights=(keyword_weight, semantic_weight),
                         keyword_options=_keyword_options(synonyms)).fit(items)
        learned = fit_learned_fusion(engine.hybrid, judged, LearnedFusion(epochs=epochs, seed=seed))
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    weights = dict(zip(FEATURES, learned.weights.tolist()))
    path = learned.save(out or obj.artifacts / ARTIFACT_NAME, {"judgments": str(source), "encoder": encoder_id, "fusion": fusion,
                              "weights": [keyword_weight, semantic_weight], "feature_weights": weights})
    click.echo(json.dumps({"artifact": str(path), **learned.report, "feature_weights": weights}, indent=2))


@search.command("fit-synonyms")
@click.option("--products", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Products CSV (as for `search run`); without it and --judgments, the store's catalogue.")
@click.option("--judgments", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV query,product_id,relevance (1..3); without it and --products, the store's search logs.")
@click.option("--min-pairs", type=click.IntRange(1), default=2, show_default=True, help="Relevant (query, item) pairs a synonym must stand in for its word in.")
@click.option("--min-share", type=click.FloatRange(0, 1), default=0.2, show_default=True, help="Share of the word's relevant pairs without it in the title that have the synonym.")
@click.option("--weight", type=click.FloatRange(min=0), default=0.3, show_default=True, help="A synonym's title boost: weight x share x the word's own.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder: each run adds a version; `latest` points at the newest. Default <home>/artifacts/search-synonyms, where the API finds it.")
@click.pass_obj
def fit_synonyms(obj: Settings, products: Path | None, judgments: Path | None, min_pairs: int, min_share: float, weight: float, out: Path | None) -> None:
    """Learn synonyms from judged (or clicked) searches: title words that stand in for a query word in
    the items relevant to it ("shelves" -> "shelf"). Keyword search then searches them too (`search run
    --synonyms OUT`; the API loads them from the home). Prints a JSON report."""
    import json

    from shelfwise.search.keyword import KeywordIndex
    from shelfwise.search.synonyms import ARTIFACT_NAME, LearnedSynonyms

    try:
        items, judged, source = _training_data(obj, products, judgments)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    index = KeywordIndex().fit(items)  # its analyzer and spelling: synonyms are the index's own tokens
    learned = LearnedSynonyms(min_pairs=min_pairs, min_share=min_share, weight=weight).fit(
        judged, dict(zip(items["item_id"].astype(str), items["title"])), index.analyze, index.corrected)
    path = learned.save(out or obj.artifacts / ARTIFACT_NAME, {"judgments": str(source)})
    examples = {w: learned.table[w] for w in sorted(learned.table, key=lambda w: -learned.evidence[w])[:10]}  # the best supported
    click.echo(json.dumps({"artifact": str(path), **learned.report, "examples": examples}, indent=2))


@search.command("export-onnx")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Fine-tuned encoder or cross-encoder reranker (a `search finetune [--target cross-encoder] --out` folder); default the pretrained MiniLM.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for model.onnx, the tokenizer and onnx_encoder.json; serve it with `search run --model` (an encoder) or `--reranker` (a cross-encoder).")
@click.option("--int8", is_flag=True, help="Also write model.int8.onnx (int8 weights, dynamic quantisation).")
@click.pass_obj
def export_onnx(obj: Settings, model: Path | None, out: Path, int8: bool) -> None:
    """Export the text encoder, or a trained cross-encoder reranker, to ONNX (fp32, optionally int8)
    for serving through ONNX Runtime."""
    import json

    from shelfwise.encoders.onnx import export_text_encoder
    from shelfwise.search.rerank import export_reranker, is_cross_encoder_artifact

    export = export_reranker if model is not None and is_cross_encoder_artifact(model) else export_text_encoder
    if not obj.quiet:  # tracing and quantising take 20-60 s on a CPU
        what = "the cross-encoder " if export is export_reranker else ""
        click.echo(f"exporting {what}{model or 'the pretrained MiniLM'} to {out}{' (fp32 + int8)' if int8 else ''} ...", err=True)
    try:
        folder = export(model, out, int8=int8)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    files = {p.name: p.stat().st_size for p in sorted(folder.glob("*.onnx"))}
    click.echo(json.dumps({"out": str(folder), "files": files}, indent=2))


def _run_multimodal(obj: Settings, products: Path, queries: Path | None, images: tuple[Path, ...], model: Path, top: int, out: Path) -> None:
    """`search run` through the aligned text/photo space: text queries find products by their
    photos (a catalogue may have photos and no titles), --image finds them by a photo."""
    from shelfwise.commands.multimodal import multimodal_search_rows
    from shelfwise.encoders.image import ImageReadError

    query_list = _read_queries(queries) if queries else []
    try:
        rows, skipped = multimodal_search_rows(products, model, query_list, list(images), top, progress=not obj.quiet)
    except (ValueError, ImageReadError) as e:
        raise click.ClickException(str(e)) from e
    for item_id, reason in skipped.items():
        click.echo(f"skipped product {item_id}: {reason}", err=True)
    _write_run(out, [row[:4] for row in rows])  # the run format: no title column
    if not obj.quiet:
        click.echo(f"{len(query_list)} text and {len(images)} photo queries through {model}: wrote {out}")


def _write_run(out: Path, rows: list[list]) -> None:
    import csv

    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(["query", "product_id", "rank", "score"])
        writer.writerows(rows)


def _training_data(obj: Settings, products: Path | None, judgments: Path | None):
    """(items, judgments, where they came from): the two files, or the store and its logs."""
    from shelfwise.search.engine import ITEM_COLUMNS, read_products
    from shelfwise.tuning.judgments import judgments_from_logs, read_judgments

    if products and judgments:
        return read_products(products), read_judgments(judgments), judgments
    if products or judgments:
        raise ValueError("give both --products and --judgments, or neither (to train on the store and its search logs)")
    from shelfwise.store import Store

    store = Store.open(obj)
    try:
        catalogue = store.items_frame()
        judged = judgments_from_logs(store)
    finally:
        store.close()
    if catalogue.empty or judged.empty:
        raise ValueError(f"the store in {obj.home} has {len(catalogue)} items and {len(judged)} search judgments in its logs; "
                         "ingest the catalogue and events with searches (or pass --products and --judgments)")
    return catalogue[[c for c in ITEM_COLUMNS if c in catalogue.columns]], judged, "the store's search logs"


def _engine(obj: Settings, encoder, encoder_id: str, no_cache: bool, **options):
    from shelfwise.search.engine import SearchEngine

    return SearchEngine(encoder, encoder_id=encoder_id, cache_dir=None if no_cache else obj.home / "search" / "indexes",
                        progress=not obj.quiet, **options)


def _keyword_options(synonyms: Path | None) -> dict:
    from shelfwise.search.synonyms import LearnedSynonyms

    return {"synonyms": LearnedSynonyms.load(synonyms)} if synonyms else {}


def _load_reranker(path: Path, top_n: int, first_stage_weight: float):
    """A cross-encoder artifact (torch) or its ONNX export (ONNX Runtime, int8 when exported with it)."""
    from shelfwise.search.rerank import load_reranker

    try:
        return load_reranker(path, top_n=top_n, first_stage_weight=first_stage_weight)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from e




COMMANDS = [search]


if __name__ == "__main__":
    # `python -m shelfwise.commands.search ...` works before (and beside) the `shelfwise` wiring.
    from shelfwise.config import settings

    search(obj=settings())
