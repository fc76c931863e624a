"""G-Rank: unsupervised decentralized search ranking from gossiped clicklogs (sans-IO)."""
