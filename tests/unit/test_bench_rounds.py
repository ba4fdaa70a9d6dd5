"""The benchmarks' rounds run every route once each, and no route always runs after the same
one: each route takes each place in the order once every len(routes) rounds."""

from __future__ import annotations

from peerlab.bench.traffic import Route, _rotated


def test_each_round_runs_every_route_once_and_each_route_takes_every_place() -> None:
    routes = {name: Route("127.0.0.1", port, port + 1) for port, name in enumerate("abcde", 1)}
    orders = [[name for name, _ in _rotated(routes, number)] for number in range(10)]
    assert all(sorted(order) == list("abcde") for order in orders)
    assert orders[0] == list("abcde")
    for place in range(5):  # over 5 rounds, each route is once in each place
        assert sorted(order[place] for order in orders[:5]) == list("abcde")
    assert orders[5:] == orders[:5]
    assert _rotated(routes, 2)[0][1] is routes["c"]
