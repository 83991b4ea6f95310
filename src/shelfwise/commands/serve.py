"""``shelfwise serve``: the HTTP API and web pages for the shop's own store."""

from __future__ import annotations

import os

import click

from shelfwise.config import Settings


def run_server(settings: Settings, host: str, port: int, require_read_key: bool = True, workers: int = 1) -> None:
    """Serve until Ctrl-C. With ``workers`` > 1, uvicorn runs that many processes, each with the
    model loaded (set SHELFWISE_REDIS so they share the rate limits)."""
    import uvicorn

    if require_read_key:
        access = "every request needs an API key (Authorization: Bearer KEY); make one with: shelfwise keys create --scope read"
    else:
        access = ("demo mode: reads are open without an API key; posting events and /admin still need one "
                  "(shelfwise keys create --scope events)")
    limiter = f"Redis at {settings.redis_url}" if settings.redis_url else "in process"
    limits = f"rate limit: {settings.rate_limit:g} requests/s per key, bursts of {settings.rate_burst} ({limiter})"
    if workers > 1:
        os.environ.update({"SHELFWISE_HOME": str(settings.home.resolve()), "SHELFWISE_QUIET": "1" if settings.quiet else "0",
                           "SHELFWISE_REQUIRE_READ_KEY": "1" if require_read_key else "0"})
        if settings.db_url:
            os.environ["SHELFWISE_DB"] = settings.db_url
        click.echo(f"serving http://{host}:{port} with {workers} worker processes  (API docs at /docs; Ctrl-C stops)")
        click.echo(access)
        click.echo(limits)
        uvicorn.run("shelfwise.serving.app:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level="warning", access_log=False)
        return

    from shelfwise.serving import create_app
    from shelfwise.serving.logging import setup_logging

    setup_logging("WARNING" if settings.quiet else "INFO")
    app = create_app(settings, require_read_key=require_read_key)
    info = app.state.registry.current.info
    click.echo(f"serving http://{host}:{port}  (API docs at /docs; model {info.name} {info.version}; Ctrl-C stops)")
    click.echo(access)
    click.echo(limits)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="API processes (each loads the model).")
@click.pass_obj
def serve(obj: Settings, host: str, port: int, workers: int) -> None:
    """Serve the API, storefront and dashboard for the store (reads need a key with the read scope)."""
    run_server(obj, host, port, workers=workers)


COMMANDS = [serve]
