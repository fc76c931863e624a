"""Command modules of the `plexus` CLI: each has ``register(app)`` (listed in node.cli.COMMAND_MODULES)."""
