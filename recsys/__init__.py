"""Plexus recsys package."""
