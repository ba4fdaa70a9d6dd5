"""The one result type every checker returns: valid / invalid / unknown, with evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Validity = Literal["valid", "invalid", "unknown"]


@dataclass(frozen=True)
class Verdict:
    """What a checker concluded.

    `valid` is "unknown" when the checker could not decide (a time limit, no data) rather
    than guessing. `evidence` is JSON-able and holds the smallest set of operations or
    facts that shows the violation, so a reader can verify it by hand; it is empty when
    the history is valid. `stats` holds counts and timings that help read the result.
    """

    checker: str
    valid: Validity
    summary: str
    evidence: Any = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True only when the checker proved the property; "unknown" is not ok."""
        return self.valid == "valid"

    def to_json(self) -> dict[str, Any]:
        return {
            "checker": self.checker,
            "valid": self.valid,
            "summary": self.summary,
            "evidence": self.evidence,
            "stats": self.stats,
        }
