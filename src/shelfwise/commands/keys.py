"""``shelfwise keys``: API keys for the HTTP API (create, list, revoke). Only a hash of each key
is stored; the key itself is shown once, alone on the last line of ``keys create``."""

from __future__ import annotations

import time

import click

from shelfwise.config import Settings

SCOPES = ("read", "events", "admin")  # shelfwise.serving.auth.SCOPES, kept here so --help stays fast


@click.group()
def keys() -> None:
    """API keys with scopes: read, events, admin (admin grants all three)."""


@keys.command("create")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="A scope the key grants; repeat for several.")
@click.option("--name", default=None, help="What the key is for (shown by keys list).")
@click.pass_obj
def create(obj: Settings, scopes: tuple[str, ...], name: str | None) -> None:
    """Create a key and print it (the last line of output is the key alone)."""
    from shelfwise.serving.auth import create_key
    from shelfwise.store import Store

    key, plain = create_key(Store.open(obj), list(scopes), name)
    click.echo(f"created key {key.key_id} with scopes {', '.join(sorted(key.scopes))}; it is shown only now:", err=False)
    click.echo(plain)


@keys.command("list")
@click.pass_obj
def list_(obj: Settings) -> None:
    """The keys (ids, scopes, names; never the keys themselves)."""
    from shelfwise.serving.auth import list_keys
    from shelfwise.store import Store

    found = list_keys(Store.open(obj))
    if not found:
        click.echo("no API keys; create one with: shelfwise keys create --scope read")
    for k in found:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.created_at / 1000))
        state = "revoked" if k.revoked_at else "active"
        click.echo(f"{k.key_id}  {state:7}  {','.join(sorted(k.scopes)):18}  {created}  {k.name or ''}")


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def revoke(obj: Settings, key_id: str) -> None:
    """Revoke a key by its id (servers stop accepting it within 30 seconds)."""
    from shelfwise.serving.auth import revoke_key
    from shelfwise.store import Store

    if not revoke_key(Store.open(obj), key_id):
        raise click.ClickException(f"no active key {key_id!r}")
    click.echo(f"revoked {key_id}")


COMMANDS = [keys]
