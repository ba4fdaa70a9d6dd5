"""`peerlab bench fidelity` refuses what it cannot run before it starts anything."""

from __future__ import annotations

import pytest

from peerlab.bench import fidelity
from peerlab.errors import UsageError


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"system": "nosuch"}, "--system"),
        ({"system": "etcd", "backend": "nosuch"}, "backend"),
        ({"system": "syncpeer", "backend": "sim"}, "--backend"),
        ({"system": "etcd", "cuts": 0}, "--cuts"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(UsageError) as info:
        fidelity.run(**arguments)  # type: ignore[arg-type]
    assert info.value.field == field
