"""``shelfwise ingest items|users|events PATH`` and ``shelfwise status``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shelfwise.config import Settings


def _rejects_path(settings: Settings, name: str) -> Path:
    folder = settings.ensure_home() / "rejects"
    folder.mkdir(exist_ok=True)
    return folder / f"{name}.rejects.jsonl"


def _ingest_command(kind: str) -> click.Command:
    @click.command(name=kind, help=f"Load {kind} from a JSON Lines, CSV or Parquet file into the store.")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), help="File format (default: from the extension).")
    @click.option("--skip-invalid", is_flag=True, help="Keep the good rows; write the bad ones with their reasons to a reject file.")
    @click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), help="Reject file (default: <home>/rejects/<file>.rejects.jsonl).")
    @click.option("--batch-size", default=50_000, show_default=True, help="Rows per batch; memory stays bounded by it.")
    @click.pass_obj
    def command(obj: Settings, path: Path, fmt: str | None, skip_invalid: bool, rejects: Path | None, batch_size: int) -> None:
        from shelfwise.ingest import IngestError, ingest_file
        from shelfwise.store import Store

        store = Store.open(obj)
        try:
            report = ingest_file(store, kind, path, fmt=fmt, skip_invalid=skip_invalid, rejects_path=rejects or _rejects_path(obj, path.name), batch_size=batch_size, progress=not obj.quiet)
        except IngestError as e:
            raise click.ClickException(f"{e}\nnothing from {path} was stored") from e
        click.echo(report.summary())

    return command


@click.group()
def ingest() -> None:
    """Load the shop's catalogue, users and behaviour events into the store."""


for _kind in ("items", "users", "events"):
    ingest.add_command(_ingest_command(_kind))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(obj: Settings, as_json: bool) -> None:
    """What the store holds."""
    from shelfwise.store import Store

    counts = Store.open(obj).counts()
    if as_json:
        click.echo(json.dumps(counts))
    else:
        for name, n in counts.items():
            click.echo(f"{name:>8}: {n:,}")


COMMANDS = [ingest, status]


@ingest.command(name="public")
@click.argument("dataset", type=click.Choice(["fashion", "homedepot", "recbole-text"]))
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Keep the good rows; write the bad ones to <home>/rejects/.")
@click.pass_obj
def ingest_public(obj: Settings, dataset: str, folder: Path, skip_invalid: bool) -> None:
    """Load a public benchmark folder (as in ../shared/data) into the store, through the same
    validation as any ingest: fashion (catalogue with photos), homedepot (product titles),
    recbole-text (items with text, and each user's history as purchase events)."""
    from shelfwise.datasets.public import STORE_LOADERS
    from shelfwise.ingest import IngestError, ingest_frame
    from shelfwise.store import Store

    store = Store.open(obj)
    try:
        for kind, frame in STORE_LOADERS[dataset](folder).items():
            rejects = _rejects_path(obj, f"{dataset}-{kind}")
            report = ingest_frame(store, kind, frame, source=f"{folder} ({dataset} {kind}, row)", skip_invalid=skip_invalid, rejects_path=rejects)
            click.echo(report.summary())
    except IngestError as e:
        raise click.ClickException(str(e)) from e
