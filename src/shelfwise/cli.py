"""The ``shelfwise`` command. Each capability's commands live in ``shelfwise.commands.<name>``;
this module only assembles them, so ``shelfwise --help`` stays fast (heavy imports happen
inside the commands)."""

from __future__ import annotations

import click

from shelfwise.commands import demo, ingest, keys, multimodal, recommend, search, serve
from shelfwise.config import settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), help="Shelfwise home [env SHELFWISE_HOME, default ./shelfwise-home].")
@click.option("--db", help="Database URL, e.g. postgresql://user@host/db [env SHELFWISE_DB, default SQLite in the home].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.version_option(package_name="shelfwise")
@click.pass_context
def main(ctx: click.Context, home: str | None, db: str | None, quiet: bool) -> None:
    """shelfwise: search and recommendations for online shops."""
    ctx.obj = settings(home=home, db=db, quiet=quiet)


@main.group()
def bench() -> None:
    """Train and evaluate on public benchmarks, writing metrics and artifacts to a folder."""


@main.group()
def train() -> None:
    """Train models on the data in the store; artifacts go to the shelfwise home."""


# Each capability module may add top-level COMMANDS, and commands under BENCH, TRAIN and SEARCH.
for module in (ingest, demo, serve, keys, recommend, search, multimodal):
    for group, commands in ((main, "COMMANDS"), (bench, "BENCH"), (train, "TRAIN"), (search.search, "SEARCH")):
        for command in getattr(module, commands, []):
            group.add_command(command)


if __name__ == "__main__":
    main()
