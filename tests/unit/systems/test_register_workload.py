"""The register workload: seeded choices, fresh keys, cas from what was seen; driven against
an in-memory register it yields a history the linearizability checker accepts, and against
a register that serves stale reads one it rejects."""

from __future__ import annotations

import asyncio
from typing import Any

from peerlab.checkers import linearizable
from peerlab.history import History
from peerlab.systems.recording import Recording, Unsuccessful
from peerlab.workload import Op, RegisterWorkload, run_register


def ops_of(workload: RegisterWorkload, process: int, count: int) -> list[Op]:
    out = []
    for _ in range(count):
        op = workload.next_op(process)
        workload.observe(process, op, op.value if op.f == "write" else None)
        out.append(op)
    return out


def test_same_seed_same_operations() -> None:
    a = ops_of(RegisterWorkload(seed=7), 0, 200)
    b = ops_of(RegisterWorkload(seed=7), 0, 200)
    c = ops_of(RegisterWorkload(seed=8), 0, 200)
    assert a == b
    assert a != c


def test_writes_never_repeat_a_value_and_keys_retire() -> None:
    workload = RegisterWorkload(seed=1, keys=2, ops_per_key=10)
    ops = ops_of(workload, 0, 100)
    written = [op.value for op in ops if op.f == "write"] + [
        op.value[1] for op in ops if op.f == "cas"
    ]
    assert len(written) == len(set(written))
    keys = {op.key for op in ops}
    assert len(keys) >= 100 // 10  # every key took at most 10 operations
    assert all(sum(op.key == key for op in ops) <= 10 for key in keys)


def test_cas_expects_what_the_process_last_saw() -> None:
    workload = RegisterWorkload(seed=3, keys=1, read_share=0.0, write_share=0.2)
    seen: dict[str, Any] = {}
    for _ in range(200):
        op = workload.next_op(0)
        if op.f == "cas":
            assert op.value[0] == seen[op.key]
        result = op.value if op.f == "write" else True
        workload.observe(0, op, result)
        if op.f == "write":
            seen[op.key] = op.value
        elif op.f == "cas":
            seen[op.key] = op.value[1]


def unknown(exc: Exception) -> Unsuccessful:
    return "info"


class MemoryRegister:
    """An atomic in-memory register that records like a system client; with `stale`, reads
    return the value before the last write (a lagging replica)."""

    def __init__(self, history: History, state: dict[str, Any], process: int, stale: bool) -> None:
        self.history, self.state, self.process, self.stale = history, state, process, stale

    async def _op(self, f: str, value: dict[str, Any], apply: Any) -> Any:
        with Recording(self.history, f, value, classify=unknown, process=self.process) as op:
            await asyncio.sleep(0)
            result, completion = apply()
            if completion is None:
                op.fail(error="compare failed")
            else:
                op.ok(completion)
        await asyncio.sleep(0)
        return result

    async def read(self, key: str) -> Any:
        def apply() -> tuple[Any, Any]:
            current, previous = self.state.get(key, (None, None))
            value = previous if self.stale else current
            return value, {"key": key, "value": value}

        return await self._op("read", {"key": key, "value": None}, apply)

    async def write(self, key: str, value: Any) -> None:
        def apply() -> tuple[None, Any]:
            self.state[key] = (value, self.state.get(key, (None, None))[0])
            return None, {"key": key, "value": value}

        await self._op("write", {"key": key, "value": value}, apply)

    async def cas(self, key: str, expected: Any, new: Any) -> bool:
        def apply() -> tuple[bool, Any]:
            current = self.state.get(key, (None, None))[0]
            if current != expected:
                return False, None
            self.state[key] = (new, current)
            return True, {"key": key, "value": [expected, new]}

        return bool(await self._op("cas", {"key": key, "value": [expected, new]}, apply))


def drive(stale: bool) -> History:
    history = History()
    state: dict[str, Any] = {}
    workload = RegisterWorkload(seed=11, keys=2, ops_per_key=40)
    clients = [
        (lambda process, s=stale and w == 0: MemoryRegister(history, state, process, s))
        for w in range(4)
    ]
    counts = asyncio.run(run_register(clients, workload, 0.3, pace=0.001))
    assert counts["ok"] > 50
    return history


def test_a_correct_register_is_linearizable() -> None:
    verdict = linearizable(drive(stale=False), "cas-register", time_limit=30)
    assert verdict.valid == "valid", verdict.to_json()


def test_stale_reads_are_caught() -> None:
    verdict = linearizable(drive(stale=True), "cas-register", time_limit=30)
    assert verdict.valid == "invalid", verdict.to_json()
