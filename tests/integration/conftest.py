"""Integration tests run real py-libp2p hosts on 127.0.0.1 inside one trio loop per test."""

from __future__ import annotations

import functools
import inspect
import shutil
import tempfile
from pathlib import Path

import pytest
import trio


def pytest_collection_modifyitems(items):
    """Run ``async def`` tests under trio.run (no plugin needed)."""
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "obj", None)):
            item.obj = _trio_runner(item.obj)


def _trio_runner(fn):
    @functools.wraps(fn)
    def run(*args, **kwargs):
        return trio.run(functools.partial(fn, *args, **kwargs))

    return run


@pytest.fixture
def short_tmp():
    """A short directory path: Unix socket paths are limited to ~107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="plx"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
