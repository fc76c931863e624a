"""The plurality vote that decides which replica a split converges to."""

from learning.consensus import resync_sources

A, B, C, OLD = b"a" * 8, b"b" * 8, b"c" * 8, b"o" * 8


def test_no_resync_when_ours_wins():
    bases = {b"p1": A, b"p2": A, b"p3": B}

    assert resync_sources(bases, A) == ()


def test_plurality_without_majority_moves_the_smaller_groups():
    # Arrange: five peers split three ways; no checksum has a majority
    bases = {b"p1": A, b"p2": B, b"p3": B, b"p4": C, b"p5": C}

    # Act
    from_a = resync_sources(bases, A)
    from_b = resync_sources(bases, B)
    from_c = resync_sources(bases, C)

    # Assert: B and C tie at two votes; the larger checksum (C) wins on every replica
    assert from_a == (b"p4", b"p5")
    assert from_b == (b"p4", b"p5")
    assert from_c == ()


def test_lagging_peers_do_not_vote():
    bases = {b"me": A, b"s1": OLD, b"s2": OLD, b"s3": OLD}

    assert resync_sources(bases, A, earlier={OLD}) == ()
    assert resync_sources(bases, A) == (b"s1", b"s2", b"s3")


def test_one_record_alone_never_moves_a_replica():
    bases = {b"p1": C}

    assert resync_sources(bases, A) == ()
    assert resync_sources(bases, A, min_votes=1) == (b"p1",)
