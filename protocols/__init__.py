"""Plexus protocols package."""
