"""Search service settings: `--opt search.<field>=<value>` parsing and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.services.search import SearchSettings
from node.settings import NodeSettings
from protocols import grank as wire


def with_options(*pairs: tuple[str, str]) -> NodeSettings:
    return NodeSettings(home=Path("/nonexistent"), options=pairs)


def test_options_override_defaults_and_other_services_options_are_left_alone():
    # Act
    settings = SearchSettings.from_options(with_options(("search.pull_interval_s", "0.5"), ("trust.walks", "10"),
                                                        ("search.max_pull_rounds", "3")))
    # Assert
    assert settings.pull_interval_s == 0.5 and settings.max_pull_rounds == 3
    assert settings.engine().gossip.max_bytes_per_message == wire.MAX_ENTRY_BYTES


@pytest.mark.parametrize(("key", "value", "message"), [
    ("search.nope", "1", "unknown option"),
    ("search.pull_interval_s", "fast", "is not a float"),
    ("search.pull_interval_s", "0", "pull_interval_s must be"),
    ("search.max_summary_authors", "20000", "max_summary_authors must be in"),
])
def test_bad_options_are_refused_with_a_clear_message(key, value, message):
    # Act / Assert
    with pytest.raises(ValueError, match=message):
        SearchSettings.from_options(with_options((key, value)))
