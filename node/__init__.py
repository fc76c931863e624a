"""Plexus node package."""
