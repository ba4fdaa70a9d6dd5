"""A toxic with Toxiproxy's wrapper fields: name, type, stream, toxicity and attributes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from peerlab.errors import UsageError
from peerlab.fabric.toxics import TOXICS, Toxic

STREAMS = ("upstream", "downstream")


def _bad_body(detail: str, hint: str | None = None) -> UsageError:
    return UsageError(f"bad request body: {detail}", field="toxic", hint=hint)


@dataclass
class ToxicSpec:
    """A toxic on one stream (`upstream`: client to server) of a proxy's connections.

    `toxicity` is the probability that a connection gets the toxic, drawn once per
    connection from the seeded generator of that connection.
    """

    toxic: Toxic
    name: str = ""
    stream: str = "downstream"
    toxicity: float = 1.0

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise UsageError(
                "stream was invalid, can be either upstream or downstream", field="stream"
            )
        if (
            isinstance(self.toxicity, bool)
            or not isinstance(self.toxicity, int | float)
            or not 0 <= self.toxicity <= 1
        ):
            raise _bad_body(f"toxicity is {self.toxicity!r}", "a probability from 0.0 to 1.0")
        if not self.name:
            self.name = f"{self.type}_{self.stream}"

    @property
    def type(self) -> str:
        return self.toxic.type

    def to_dict(self) -> dict[str, Any]:
        return {
            "attributes": self.toxic.attributes(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }

    @classmethod
    def from_dict(cls, raw: Any, protocol: str | None = None) -> ToxicSpec:
        """Parse Toxiproxy's JSON form; `protocol` refuses toxics that cannot act on it."""
        if not isinstance(raw, dict):
            raise _bad_body("a toxic is a JSON object")
        kind = raw.get("type")
        cls_ = TOXICS.get(kind) if isinstance(kind, str) else None
        if cls_ is None or (protocol is not None and not cls_.supports(protocol)):
            usable = sorted(
                name
                for name, toxic in TOXICS.items()
                if protocol is None or toxic.supports(protocol)
            )
            raise UsageError(
                "invalid toxic type",
                field="type",
                hint=f"{kind!r} is not one of {', '.join(usable)}",
            )
        name = raw.get("name") or ""
        if not isinstance(name, str):
            raise _bad_body(f"name is {name!r}", "a toxic's name is a string")
        return cls(
            _toxic(cls_, raw.get("attributes")),
            name,
            raw.get("stream") or "downstream",
            raw.get("toxicity", 1.0),
        )

    def updated(self, raw: Any) -> ToxicSpec:
        """This toxic with the attributes and toxicity in `raw` changed (Toxiproxy's update)."""
        if not isinstance(raw, dict):
            raise _bad_body("a toxic is a JSON object")
        changes = raw.get("attributes") or {}
        if not isinstance(changes, dict):
            raise _bad_body("attributes is not a JSON object")
        attributes = {**self.toxic.attributes(), **changes}
        return ToxicSpec(
            _toxic(type(self.toxic), attributes),
            self.name,
            self.stream,
            raw.get("toxicity", self.toxicity),
        )


def _toxic(cls: type[Toxic], attributes: Any) -> Toxic:
    attributes = attributes or {}
    if not isinstance(attributes, dict):
        raise _bad_body("attributes is not a JSON object")
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(attributes) - known)
    if unknown:
        raise _bad_body(
            f"toxic {cls.type!r} has no attribute {unknown[0]!r}",
            f"its attributes are {', '.join(sorted(known)) or 'none'}",
        )
    return cls(**attributes)
