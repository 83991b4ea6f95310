"""``shelfwise demo``: the synthetic demo shop, generated, trained and served in one command."""

from __future__ import annotations

import time

import click

from shelfwise.config import Settings


def prepare_demo(settings: Settings, n_items: int, n_users: int, n_events: int, seed: int) -> dict:
    """Generate and load the demo shop unless the store already holds a shop. Returns the counts."""
    from shelfwise.datasets.demo import generate
    from shelfwise.ingest import ingest_frame
    from shelfwise.store import Store

    store = Store.open(settings)
    counts = store.counts()
    if counts["items"]:
        click.echo(f"reusing the shop in {settings.home}: {counts['items']:,} items, {counts['events']:,} events")
        return counts
    start = time.perf_counter()
    shop = generate(n_items=n_items, n_users=n_users, n_events=n_events, seed=seed, progress=not settings.quiet)
    for kind, frame in (("items", shop.items), ("users", shop.users), ("events", shop.events)):
        ingest_frame(store, kind, frame, source=f"demo {kind}")
    counts = store.counts()
    click.echo(
        f"generated the demo shop in {time.perf_counter() - start:.1f} s: "
        f"{counts['items']:,} items, {counts['users']:,} users, {counts['events']:,} events"
    )
    return counts


@click.command()
@click.option("--port", default=8000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Prepare the shop and its models, then stop.")
@click.option("--items", "n_items", default=5_000, show_default=True, help="Items in a newly generated shop.")
@click.option("--users", "n_users", default=2_000, show_default=True)
@click.option("--events", "n_events", default=150_000, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.pass_obj
def demo(obj: Settings, port: int, no_serve: bool, n_items: int, n_users: int, n_events: int, seed: int) -> None:
    """Generate the demo shop (first run), train its models and serve it on 127.0.0.1."""
    from shelfwise.commands.serve import run_server

    prepare_demo(obj, n_items, n_users, n_events, seed)
    if not no_serve:
        retire_demo_keys(obj)
        click.echo(f"storefront: http://127.0.0.1:{port}/   dashboard: http://127.0.0.1:{port}/dashboard   "
                   f"(the storefront posts its clicks with an events-only key it gets from /web/config in demo mode)")
        run_server(obj, "127.0.0.1", port, require_read_key=False)


def retire_demo_keys(settings: Settings) -> None:
    """Revoke the events keys earlier demo runs handed to the storefront: each run makes its own."""
    from shelfwise.serving.auth import list_keys, revoke_key
    from shelfwise.serving.routers.dashboard import DEMO_KEY_NAME
    from shelfwise.store import Store

    store = Store.open(settings)
    try:
        for key in list_keys(store):
            if key.name == DEMO_KEY_NAME and key.revoked_at is None:
                revoke_key(store, key.key_id)
    finally:
        store.close()


COMMANDS = [demo]
