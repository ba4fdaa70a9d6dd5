"""One seed rules a run: the same seed makes the same random choices on the same links."""

from __future__ import annotations

import asyncio

from fabric_helpers import round_trip

from peerlab.fabric.links import Stage
from peerlab.fabric.toxics import Chunk, Latency, Slicer, Stub
from peerlab.seed import derive_rng


def draws(lab, toxic: dict, src: str, dst: str, count: int = 8) -> list:
    """The choices the toxic makes on the first connection from src to dst."""
    lab.net.add_toxic(src, dst, toxic)
    round_trip(lab[src].dial(lab[dst]))

    async def sample() -> list:
        proxy = lab.fabric.proxies[(dst, "echo")]
        (conn,) = proxy.connections
        stage: Stage = next(s for p in conn.pumps for s in p.stages)
        if isinstance(stage.toxic, Latency):
            return [stage.toxic.delay(stage.stub) for _ in range(count)]
        return [stage.toxic.size(stage.stub) for _ in range(count)]

    return lab.run(sample())


JITTER = {"type": "latency", "attributes": {"latency": 1, "jitter": 50}}
SLICES = {"type": "slicer", "attributes": {"average_size": 100, "size_variation": 50}}


def test_same_seed_same_jitter_and_slices(make_lab):
    for toxic in (JITTER, SLICES):
        first = draws(make_lab(seed=42), toxic, "A", "B")
        assert len(set(first)) > 1
        assert draws(make_lab(seed=42), toxic, "A", "B") == first
        assert draws(make_lab(seed=43), toxic, "A", "B") != first


def test_each_link_draws_on_its_own(make_lab):
    assert draws(make_lab(seed=42), JITTER, "A", "B") != draws(make_lab(seed=42), JITTER, "C", "B")


def test_slicer_sizes_stay_within_the_variation():
    async def run() -> list[bytes]:
        stub = Stub(derive_rng(5, "slicer"), True)
        slicer = Slicer(average_size=100, size_variation=20)
        return [piece.data async for piece in slicer.pipe(stub, Chunk(b"x" * 5000, 0.0))]

    pieces = asyncio.run(run())
    assert b"".join(pieces) == b"x" * 5000
    assert all(80 <= len(p) <= 120 for p in pieces[:-1])
