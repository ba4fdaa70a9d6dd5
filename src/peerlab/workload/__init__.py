"""Workloads: seeded streams of client operations and the runners that drive them.

A workload decides *what* to do (which operation, which key, which value) from the run's
seed; a client of the system under test decides *how* and records each operation in the
history. Checkers then read the history. See `register` for reads, writes and
compare-and-set on registers.
"""

from peerlab.workload.register import Op, RegisterClient, RegisterWorkload, run_register

__all__ = ["Op", "RegisterClient", "RegisterWorkload", "run_register"]
