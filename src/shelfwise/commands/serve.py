"""``shelfwise serve``: the HTTP API and web pages for the shop's own store."""

from __future__ import annotations

import click

from shelfwise.config import Settings


def run_server(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from shelfwise.serving import create_app

    click.echo(f"serving http://{host}:{port}  (API docs at /docs; Ctrl-C stops)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.pass_obj
def serve(obj: Settings, host: str, port: int) -> None:
    """Serve the API, storefront and dashboard for the store."""
    run_server(obj, host, port)


COMMANDS = [serve]
