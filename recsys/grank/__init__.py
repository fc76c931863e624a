"""G-Rank: unsupervised decentralized search ranking from gossiped clicklogs (sans-IO).

``GRankEngine`` is one node's state (clicklogs, metadata, search); ``clicklog``, ``gossip``,
``metadata`` and ``rank`` are its parts; ``attacks`` and ``experiment`` measure it under Sybil attack.
"""

from recsys.grank.clicklog import AddResult, ClickEntry, ClickLogSettings, ClickLogStore, tokenize
from recsys.grank.engine import GRankEngine, GRankEngineSettings
from recsys.grank.gossip import AuthorSummary, GossipSettings, PullRequest, PullResponse
from recsys.grank.metadata import ItemMetadata, MetadataIndex, make_item_id
from recsys.grank.rank import ClickIndex, GRankSettings, SearchResult, search, similarities

__all__ = [
    "AddResult",
    "AuthorSummary",
    "ClickEntry",
    "ClickIndex",
    "ClickLogSettings",
    "ClickLogStore",
    "GRankEngine",
    "GRankEngineSettings",
    "GRankSettings",
    "GossipSettings",
    "ItemMetadata",
    "MetadataIndex",
    "PullRequest",
    "PullResponse",
    "SearchResult",
    "make_item_id",
    "search",
    "similarities",
    "tokenize",
]
