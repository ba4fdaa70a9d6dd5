"""Checkers: pure functions from a history and final states to a `Verdict`.

Each returns valid / invalid / unknown with the smallest evidence that shows a violation;
none of them touches a network or a clock (beyond `linearizable`'s own time limit).
"""

from peerlab.checkers.causality import causal_order
from peerlab.checkers.converged import converged_within, convergence
from peerlab.checkers.duplicates import exactly_once
from peerlab.checkers.fidelity import fault_fidelity
from peerlab.checkers.latency import latency_slo
from peerlab.checkers.linearizability import linearizable
from peerlab.checkers.lost_writes import no_lost_writes
from peerlab.checkers.models import MODELS, Model, model_named
from peerlab.checkers.sync_loops import no_sync_loops
from peerlab.checkers.verdict import Validity, Verdict

__all__ = [
    "MODELS",
    "Model",
    "Validity",
    "Verdict",
    "causal_order",
    "converged_within",
    "convergence",
    "exactly_once",
    "fault_fidelity",
    "latency_slo",
    "linearizable",
    "model_named",
    "no_lost_writes",
    "no_sync_loops",
]
