"""Service settings from `plexus run --opt <service>.<field>=<value>` (one parser for every service)."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from node.settings import NodeSettings

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
S = TypeVar("S")


def _parse(raw: str, kind: type, key: str):
    if kind is bool:
        word = raw.strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise ValueError(f"option {key}={raw!r} is not a boolean ({'/'.join(TRUE_WORDS + FALSE_WORDS)})")
        return word in TRUE_WORDS
    try:
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"option {key}={raw!r} is not a {kind.__name__}") from exc


def settings_from_options(cls: type[S], settings: NodeSettings, prefix: str) -> S:
    """``cls()`` with fields overridden by the node's ``<prefix><field>=value`` options.

    Unknown fields and unparsable values raise ValueError naming the option; the result is
    validated (its ``validate()`` must raise ValueError on bad values).
    """
    known = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, raw in settings.options:
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name not in known:
            raise ValueError(f"unknown option {key!r}; {prefix.rstrip('.')} options: {', '.join(known)}")
        values[name] = _parse(raw, type(known[name].default), key)
    result = cls(**values)
    result.validate()
    return result
