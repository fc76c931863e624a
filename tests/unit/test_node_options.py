"""`--opt service.field=value` parsing shared by every service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from node.options import settings_from_options
from node.settings import NodeSettings


@dataclass(frozen=True)
class DemoSettings:
    interval_s: float = 1.0
    walks: int = 10
    fast: bool = False

    def validate(self) -> None:
        if self.walks < 1:
            raise ValueError("walks must be >= 1")


def node_with(*pairs: tuple[str, str]) -> NodeSettings:
    return NodeSettings(home=Path("/tmp/x"), options=pairs)


def test_options_override_defaults_by_type():
    parsed = settings_from_options(DemoSettings, node_with(("demo.walks", "5"), ("demo.fast", "yes"), ("other.x", "1")), "demo.")
    assert parsed == DemoSettings(interval_s=1.0, walks=5, fast=True)


@pytest.mark.parametrize(
    "pair, message",
    [
        (("demo.nope", "1"), "unknown option"),
        (("demo.walks", "many"), "not a int"),
        (("demo.fast", "maybe"), "not a boolean"),
        (("demo.walks", "0"), "walks must be"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(pair, message):
    with pytest.raises(ValueError, match=message):
        settings_from_options(DemoSettings, node_with(pair), "demo.")
