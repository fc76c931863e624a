"""`python -m node` is the `plexus` command."""

from node.cli import main

main()
