"""Step types: each YAML step keyword maps to one typed handler class, never to a string if-chain.

A step class is a frozen dataclass with two methods::

    @step("hangup")
    @dataclass(frozen=True)
    class Hangup:
        party: str
        call: str

        @classmethod
        def parse(cls, f: Fields, scope: ParseScope) -> Hangup: ...   # validate at load time
        def run(self, ctx: RunContext) -> None: ...                   # act; add checks to ctx

``parse`` sees the step's YAML through :class:`~harness.contracts.yamlsrc.Fields`, so its errors name the
file, line and field; ``scope`` knows the scenario's parties and the call names defined so far.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from harness.contracts.checkname import NAME_PART
from harness.contracts.errors import ScenarioError
from harness.contracts.yamlsrc import Fields

if TYPE_CHECKING:
    from harness.scenarios.context import RunContext

__all__ = ["REGISTRY", "ParseScope", "StepType", "name_part_problem", "step"]


def name_part_problem(value: str, what: str) -> str | None:
    """Why ``value`` (a party name, a call name, a label) cannot be part of a check name, or None.

    Check names join their parts with ``:`` and a direction's ends with ``->``
    (:mod:`harness.contracts.checkname`): a name holding either would corrupt every check it names.
    """
    if NAME_PART.fullmatch(value):
        return None
    return (f"{what} {value!r} cannot be part of a check name: use letters, digits, spaces and _ . + - ( ), "
            "starting with a letter, digit or one of _ . + - (':' and '->' would break the check names)")


@dataclass
class ParseScope:
    """What a step may refer to while a scenario is being loaded."""

    path: str
    parties: dict[str, Any]
    calls: set[str] = field(default_factory=set)
    fixture_resolver: Callable[[str, int | None, str], str] | None = None

    def party(self, f: Fields, key: str, value: Any = None) -> str:
        name = f.req(key, str) if value is None else value
        if not isinstance(name, str):
            raise f.fail(key, f"must name a party, got {name!r}")
        if name not in self.parties:
            known = ", ".join(self.parties) or "none"
            raise f.fail(key, f"unknown party '{name}' (parties: {known})")
        return str(name)

    def call(self, f: Fields, key: str, default: str | None = None) -> str:
        name = f.opt(key, str, default) if default is not None else f.req(key, str)
        if name not in self.calls:
            known = ", ".join(sorted(self.calls)) or "none yet"
            raise f.fail(key, f"unknown call '{name}' (calls defined before this step: {known})")
        return str(name)

    def new_call(self, f: Fields, key: str, default: str) -> str:
        """A call name this step defines (``as``): not used by an earlier step, and fit for check names."""
        name = self.name_part(f, key, default, "call name")
        if name in self.calls:
            raise f.fail(key, f"call name '{name}' is already used by an earlier step")
        self.calls.add(name)
        return name

    def name_part(self, f: Fields, key: str, default: str, what: str = "label") -> str:
        """A name the step's checks are named by (a ``label``), refused at load time when it would break them."""
        value = str(f.opt(key, str, default))
        problem = name_part_problem(value, what)
        if problem is not None:
            raise f.fail(key, problem)
        return value

    def fixture(self, f: Fields, key: str) -> str | None:
        value = f.opt(key, str, None)
        if value is None or self.fixture_resolver is None:
            return value
        return self.fixture_resolver(value, f.line_of(key), f.field_name(key))


class StepType(Protocol):
    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Any: ...

    def run(self, ctx: RunContext) -> None: ...


S = TypeVar("S")
REGISTRY: dict[str, type[Any]] = {}


def step(name: str) -> Callable[[type[S]], type[S]]:
    def register(cls: type[S]) -> type[S]:
        if name in REGISTRY:
            raise ValueError(f"step {name!r} registered twice")
        REGISTRY[name] = cls
        cls.keyword = name  # type: ignore[attr-defined]
        return cls

    return register


def lookup(name: str, path: str, line: int | None, where: str) -> type[Any]:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ScenarioError(f"unknown step '{name}' (known steps: {known})", path, line, where) from None
