"""CLI commands, one module per capability. Each module exposes ``COMMANDS``: the click
commands or groups it adds to ``shelfwise``."""
