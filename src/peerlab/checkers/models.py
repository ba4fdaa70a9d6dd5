"""Sequential specifications that the linearizability checker tests a history against.

A model turns each operation into a compact, hashable step and applies steps to a
hashable state; `step` returns `REJECT` when the operation could not have happened in that
state (a read of 2 from a register holding 1). States are hashable so the search can
remember the (linearized operations, state) pairs it has already explored.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any, ClassVar, Final

# A step is a tuple whose first item names the action; the rest are its frozen arguments.
Step = tuple[Any, ...]
REJECT: Final = object()


class Unseen:
    """A value no operation ever observed: all of them compare equal (see `Model.forget`).

    It keeps the real value, so evidence still shows what the state actually was.
    """

    __slots__ = ("value",)

    def __init__(self, value: Hashable) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unseen)

    def __hash__(self) -> int:
        return hash(Unseen)

    def __repr__(self) -> str:
        return repr(self.value)


class _FrozenMap(frozenset[tuple[Hashable, Hashable]]):
    """A mapping's items, hashable; thaws back into a dict for evidence."""


def freeze(value: Any) -> Hashable:
    """A hashable equal-for-equal form of a JSON-ish value (lists become tuples...)."""
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    if isinstance(value, Mapping):
        return _FrozenMap((key, freeze(item)) for key, item in value.items())
    if isinstance(value, set | frozenset):
        return frozenset(freeze(item) for item in value)
    return value


class Model:
    """A single-threaded object: its initial state, how it steps, and what each step shows."""

    name: ClassVar[str]
    functions: ClassVar[tuple[str, ...]]  # the operation names (f) it understands

    def __init__(self, initial: Any = None) -> None:
        self.initial: Hashable = freeze(initial)

    def compile(self, f: str, argument: Any, result: Any, known: bool) -> Step | None:
        """The step for one operation, or None when it constrains nothing and can be dropped.

        `known` is False for operations whose outcome is unknown (info): they have no
        result to check, but may have taken effect. The search treats a rejected unknown
        step as one that did not happen, so `step` need not model that.
        """
        raise NotImplementedError

    def step(self, state: Any, step: Step) -> Any:
        raise NotImplementedError

    def observes_only(self, step: Step) -> bool:
        """True when the step never changes the state (it is accepted or rejected as is)."""
        return step[0] == "read"

    def effects(self, step: Step) -> Iterable[Hashable]:
        """Values this step makes visible to later operations."""
        raise NotImplementedError

    def observations(self, step: Step) -> Iterable[Hashable]:
        """Values this step shows were visible."""
        raise NotImplementedError

    def forget(self, step: Step, observed: set[Hashable]) -> Step:
        """The step with each effect no operation observed wrapped in `Unseen`.

        No read or compare can tell two unobserved values apart, so merging them keeps
        every verdict and lets the search see more configurations as the same one.
        """
        unseen = {value for value in self.effects(step) if value not in observed}
        if not unseen:
            return step
        return (step[0], *(Unseen(item) if item in unseen else item for item in step[1:]))

    def describe(self, state: Any) -> Any:
        """The state as JSON-able data, for evidence."""
        return _thaw(state)

    def _unsupported(self, f: str) -> ValueError:
        others = [name for name, model in MODELS.items() if f in model.functions]
        fix = f"use model {' or '.join(others)}" if others else "no model here knows it"
        return ValueError(
            f"model {self.name!r} has no operation f={f!r} (it knows "
            f"{', '.join(self.functions)}); {fix}"
        )


class Register(Model):
    """A read/write register: a read returns the last value written (initially `initial`)."""

    name = "register"
    functions: ClassVar[tuple[str, ...]] = ("read", "write")

    def compile(self, f: str, argument: Any, result: Any, known: bool) -> Step | None:
        if f == "read":
            # An unknown read returns nothing to check and changes nothing.
            return ("read", freeze(result)) if known else None
        if f == "write":
            return ("write", freeze(argument))
        raise self._unsupported(f)

    def step(self, state: Any, step: Step) -> Any:
        if step[0] == "write":
            return step[1]
        return state if state == step[1] else REJECT

    def effects(self, step: Step) -> Iterable[Hashable]:
        return (step[1],) if step[0] == "write" else ()

    def observations(self, step: Step) -> Iterable[Hashable]:
        return (step[1],) if step[0] == "read" else ()


class CasRegister(Register):
    """A register with compare-and-set: `cas` with value [expected, new] swaps only on a match.

    An ok cas succeeded; a failed cas did not happen and never reaches the model.
    """

    name = "cas-register"
    functions: ClassVar[tuple[str, ...]] = ("read", "write", "cas")

    def compile(self, f: str, argument: Any, result: Any, known: bool) -> Step | None:
        if f != "cas":
            return super().compile(f, argument, result, known)
        if not isinstance(argument, list | tuple) or len(argument) != 2:
            raise ValueError(f"cas needs a value [expected, new], got {argument!r}")
        return ("cas", freeze(argument[0]), freeze(argument[1]))

    def step(self, state: Any, step: Step) -> Any:
        if step[0] == "cas":
            return step[2] if state == step[1] else REJECT
        return super().step(state, step)

    def effects(self, step: Step) -> Iterable[Hashable]:
        return (step[2],) if step[0] == "cas" else super().effects(step)

    def observations(self, step: Step) -> Iterable[Hashable]:
        return (step[1],) if step[0] == "cas" else super().observations(step)


class SetModel(Model):
    """A grow-only set: `add` an element; `read` returns every element added so far."""

    name = "set"
    functions: ClassVar[tuple[str, ...]] = ("add", "read")

    def __init__(self, initial: Any = None) -> None:
        super().__init__()
        if not isinstance(initial, list | tuple | set | frozenset | None):
            raise ValueError(f"a set starts from a list of elements, not {initial!r}")
        self.initial = frozenset(freeze(item) for item in initial or ())

    def compile(self, f: str, argument: Any, result: Any, known: bool) -> Step | None:
        if f == "add":
            return ("add", freeze(argument))
        if f == "read":
            if not known:
                return None
            if not isinstance(result, list | tuple | set | frozenset):
                raise ValueError(f"a set read must return a collection, got {result!r}")
            return ("read", frozenset(freeze(item) for item in result))
        raise self._unsupported(f)

    def step(self, state: Any, step: Step) -> Any:
        if step[0] == "add":
            return state | {step[1]}
        return state if state == step[1] else REJECT

    def effects(self, step: Step) -> Iterable[Hashable]:
        return (step[1],) if step[0] == "add" else ()

    def observations(self, step: Step) -> Iterable[Hashable]:
        return step[1] if step[0] == "read" else ()


MODELS: Final[dict[str, type[Model]]] = {
    model.name: model for model in (Register, CasRegister, SetModel)
}


def model_named(name: str, initial: Any = None) -> Model:
    """The model called `name`; ValueError naming the choices if there is none."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name](initial)


def _thaw(value: Any) -> Any:
    if isinstance(value, Unseen):
        return _thaw(value.value)
    if isinstance(value, _FrozenMap):
        return {key: _thaw(item) for key, item in value}
    if isinstance(value, frozenset):
        items = [_thaw(item) for item in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value
