"""Who may open one more connection to the M3UA listener
(:class:`scp.adapters.transport.ConnectionLimits`): the global limit, the per-address limit,
and the places kept for the addresses of [[m3ua.binding]]."""

from __future__ import annotations

from scp.adapters.transport import ConnectionLimits


def test_places_per_address_and_for_bound_peers() -> None:
    limits = ConnectionLimits(6, 2, frozenset({"10.0.0.1", "10.0.0.2"}))
    assert limits.unbound_places == 2  # 6 less two per bound address
    for _ in range(2):
        assert limits.refuses("192.0.2.7") is None
        limits.opened("192.0.2.7")
    assert limits.refuses("192.0.2.7") == "max_connections_per_address"
    # a second stranger: the places left are the bound peers'
    assert limits.refuses("192.0.2.8") == "places kept for [[m3ua.binding]] addresses"
    for peer in ("10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2"):
        assert limits.refuses(peer) is None
        limits.opened(peer)
    assert limits.refuses("10.0.0.1") == "max_connections"
    limits.closed("192.0.2.7")
    assert limits.refuses("192.0.2.8") is None  # a stranger's place came free
    assert limits.refuses("10.0.0.1") == "max_connections_per_address"


def test_without_bindings_every_place_is_anyones() -> None:
    limits = ConnectionLimits(3, 8, frozenset())
    for i in range(3):
        assert limits.refuses(f"192.0.2.{i}") is None
        limits.opened(f"192.0.2.{i}")
    assert limits.refuses("192.0.2.9") == "max_connections"
    for i in range(3):
        limits.closed(f"192.0.2.{i}")
    assert limits._open == {}  # nothing left behind
