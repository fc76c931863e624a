"""Plexus devnet package."""
