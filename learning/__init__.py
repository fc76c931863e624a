"""Plexus learning package."""
