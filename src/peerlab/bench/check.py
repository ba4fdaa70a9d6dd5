"""Benchmark of the linearizability checker on generated register histories.

The generator simulates clients of a real linearizable register: each process runs one
operation at a time, every operation takes effect at a random instant between its
invocation and its completion, and reads return what the register held at that instant.
So the history is valid by construction, with genuinely overlapping operations. The
invalid variant changes one read in the middle into a stale read: it returns a value that
had been overwritten by a write that completed before the read began.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal, NamedTuple

import typer

from peerlab.checkers.linearizability import linearizable
from peerlab.history import Entry, Operation, operations
from peerlab.seed import derive_rng


def register_history(
    ops: int,
    processes: int,
    seed: int,
    *,
    keys: int = 1,
    read_ratio: float = 0.5,
    info_ratio: float = 0.0,
) -> list[Entry]:
    """A valid history of `ops` reads and writes of unique values by `processes` clients.

    With `keys` > 1 every operation picks a key and its value is {"key": k, "value": v}.
    A fraction `info_ratio` of writes time out: they end `info`, took effect or not at
    random, and their client is replaced by a fresh process id, as in Jepsen.
    """
    rng = derive_rng(seed, "bench", "register-history")
    planned: list[_Planned] = []
    clocks = [rng.randrange(1_000) for _ in range(processes)]
    names = list(range(processes))
    for number in range(ops):
        client = number % processes
        call = clocks[client] + rng.randrange(1, 2_000)
        duration = rng.randrange(2, 20_000)
        clocks[client] = call + duration
        f = "read" if rng.random() < read_ratio else "write"
        timed_out = f == "write" and rng.random() < info_ratio
        # A timed-out write took effect inside its call, or never.
        effect = call + rng.randrange(1, duration) if not timed_out or rng.random() < 0.5 else None
        key = rng.randrange(keys)
        planned.append(_Planned(call, effect, call + duration, names[client], f, key, timed_out))
        if timed_out:
            names[client] += processes

    registers: dict[int, int | None] = {}
    outcome: dict[int, int | None] = {}
    written = 0
    for number, op in enumerate(planned):
        if op.f == "write":
            written += 1
            outcome[number] = written
    for number in sorted(
        (n for n, op in enumerate(planned) if op.effect is not None),
        key=lambda n: planned[n].effect or 0,
    ):
        op = planned[number]
        if op.f == "write":
            registers[op.key] = outcome[number]
        else:
            outcome[number] = registers.get(op.key)

    events = sorted(
        [(op.call, 0, number) for number, op in enumerate(planned)]
        + [(op.returned, 1, number) for number, op in enumerate(planned)]
    )
    entries: list[Entry] = []
    invoke_index: dict[int, int] = {}
    for when, is_return, number in events:
        op = planned[number]
        value: Any = outcome[number] if is_return or op.f == "write" else None
        if keys > 1:
            value = {"key": op.key, "value": value}
        index = len(entries)
        if is_return:
            kind: Literal["ok", "info"] = "info" if op.timed_out else "ok"
            data = {"invoke_index": invoke_index[number]}
            entries.append(Entry(kind, op.f, index, when, 0.0, op.process, None, value, None, data))
        else:
            invoke_index[number] = index
            entries.append(Entry("invoke", op.f, index, when, 0.0, op.process, None, value))
    return entries


class _Planned(NamedTuple):
    """One generated operation; times in ns, `effect` strictly inside the call (or None)."""

    call: int
    effect: int | None
    returned: int
    process: int
    f: str
    key: int
    timed_out: bool


def inject_stale_read(entries: list[Entry]) -> Operation:
    """Make the first read after the middle of the history stale; returns that read.

    The read returns the value of write A, where write B began after A completed and
    completed before the read began: no order can put the read between A and B.
    """
    ops = operations(entries)
    # Only acknowledged writes: an unknown one may take effect late, making any read fresh.
    writes = [op for op in ops if op.f == "write" and op.type == "ok"]
    for read in ops[len(ops) // 2 :]:
        if read.f != "read":
            continue
        key = _key(read.invoke.value)
        same_key = [w for w in writes if _key(w.invoke.value) == key]
        before = [w for w in same_key if _returned(w) < read.invoke_position]
        for newer in reversed(before):
            older = [w for w in same_key if _returned(w) < newer.invoke_position]
            if older:
                stale = older[-1].invoke.value
                assert read.completion is not None
                read.completion.value = stale
                return read
    raise ValueError("no read in the second half has an overwritten write before it")


def overlap(entries: list[Entry]) -> tuple[float, int]:
    """(mean, max) number of operations already in flight when an operation is invoked."""
    in_flight, seen = 0, []
    for entry in entries:
        if entry.type == "invoke":
            seen.append(in_flight)
            in_flight += 1
        elif entry.type in ("ok", "fail", "info"):
            in_flight -= 1
    return (sum(seen) / len(seen) if seen else 0.0), max(seen, default=0)


def _key(value: Any) -> Any:
    return value.get("key") if isinstance(value, dict) else None


def _returned(op: Operation) -> float:
    return float("inf") if op.complete_position is None else op.complete_position


def run(
    ops: int = 10_000, processes: int = 5, seed: int = 0, *, keys: int = 1, info_ratio: float = 0.0
) -> dict[str, Any]:
    """Time the checker on a valid history, then on the same history with one stale read."""
    entries = register_history(ops, processes, seed, keys=keys, info_ratio=info_ratio)
    mean_overlap, max_overlap = overlap(entries)
    started = time.perf_counter()
    valid = linearizable(entries, "register")
    valid_seconds = time.perf_counter() - started

    stale = inject_stale_read(entries)
    started = time.perf_counter()
    invalid = linearizable(entries, "register")
    invalid_seconds = time.perf_counter() - started
    blocked = invalid.evidence.get("blocked", {}) if invalid.valid == "invalid" else {}
    return {
        "ops": ops,
        "processes": processes,
        "seed": seed,
        "keys": keys,
        "info_ratio": info_ratio,
        "model": "register",
        "mean_ops_in_flight_at_invoke": round(mean_overlap, 2),
        "max_ops_in_flight_at_invoke": max_overlap,
        "valid_seconds": round(valid_seconds, 4),
        "valid_verdict": valid.valid,
        "valid_configurations": valid.stats["configurations"],
        "invalid_seconds": round(invalid_seconds, 4),
        "invalid_verdict": invalid.valid,
        "invalid_found": invalid.valid == "invalid",
        "invalid_configurations": invalid.stats["configurations"],
        "injected_stale_read_index": stale.invoke.index,
        "reported_blocked_index": blocked.get("index"),
        "better": {"valid_seconds": "lower", "invalid_seconds": "lower"},
    }


def register(bench_app: typer.Typer) -> None:
    """Add `check`: the linearizability checker benchmark."""

    @bench_app.command("check")
    def check_command(
        ops: Annotated[int, typer.Option(min=1, help="Operations in the history.")] = 10_000,
        processes: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 5,
        seed: Annotated[int, typer.Option(help="Seed of the generated history.")] = 0,
        keys: Annotated[int, typer.Option(min=1, help="Independent registers.")] = 1,
        info_ratio: Annotated[
            float, typer.Option(min=0, max=1, help="Fraction of writes that time out (info).")
        ] = 0.0,
        as_json: Annotated[bool, typer.Option("--json", help="One line of JSON.")] = False,
    ) -> None:
        """Time `linearizable` on a valid register history and on one with a stale read."""
        result = run(ops, processes, seed, keys=keys, info_ratio=info_ratio)
        typer.echo(json.dumps(result, indent=None if as_json else 2))
