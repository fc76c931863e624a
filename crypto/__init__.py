"""Plexus crypto package."""
