"""YAML that remembers where things came from, and a small field reader that names file, line and field.

Scenario, suite and profile files are all read through here, so every input error looks the same::

    doc = load_yaml(path, ScenarioError)          # LDict / LList with .line, .key_line(k), .item_line(i)
    f = Fields(doc, path, ScenarioError, "scenario")
    name = f.req("name", str)
    steps = f.opt("steps", list, [])
    f.done()                                       # unknown keys -> error with their line
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ["Fields", "LDict", "LList", "expand_env", "load_yaml", "load_yaml_text"]

T = TypeVar("T")
ErrorFactory = Callable[..., Exception]


class LDict(dict[str, Any]):
    """A mapping read from YAML, with the line of the mapping and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def key_line(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LList(list[Any]):
    """A sequence read from YAML, with the line of the sequence and of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def item_line(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LDict:
    d = LDict()
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in d:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        d[key] = loader.construct_object(value_node, deep=True)
        d.key_lines[key] = key_node.start_mark.line + 1
    return d


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LList:
    lst = LList(loader.construct_object(child, deep=True) for child in node.value)
    lst.line = node.start_mark.line + 1
    lst.item_lines = [child.start_mark.line + 1 for child in node.value]
    return lst


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml_text(text: str, path: str, error: ErrorFactory) -> Any:
    """Parse YAML text; syntax errors become ``error(message, path, line)``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.context_mark is not None and exc.problem:
            problem += f" ({exc.context} started at line {exc.context_mark.line + 1})"
            if "<stream end>" in exc.problem:  # the file just ended: the unclosed thing is the place to look
                line = exc.context_mark.line + 1
        raise error(f"invalid YAML: {problem}", path, line) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", path) from None


def load_yaml(path: Path, error: ErrorFactory) -> Any:
    """Read and parse a YAML file; a missing or unreadable file is ``error`` too."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", str(path)) from None
    except IsADirectoryError:
        raise error("is a directory, expected a YAML file", str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read: {exc}", str(path)) from None
    if not text.strip():
        raise error("file is empty", str(path), 1)
    return load_yaml_text(text, str(path), error)


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, environ: dict[str, str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable without default raises KeyError(VAR)."""
    env = os.environ if environ is None else environ

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise KeyError(name)

    return _ENV.sub(sub, value)


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", dict: "a mapping"}


class Fields:
    """Typed access to one YAML mapping, with errors that name file, line and field."""

    def __init__(self, data: Any, path: str, error: ErrorFactory, where: str, line: int | None = None):
        self.path, self.error, self.where = path, error, where
        if not isinstance(data, dict):
            got = "nothing" if data is None else type(data).__name__
            raise error(f"expected a mapping, got {got}", path, getattr(data, "line", None) or line, where)
        self.data = data
        self.used: set[str] = set()

    def line_of(self, key: str | None = None) -> int | None:
        if key is not None and isinstance(self.data, LDict):
            return self.data.key_line(key)
        return getattr(self.data, "line", None)

    def field_name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str | None, message: str) -> Exception:
        return self.error(message, self.path, self.line_of(key), self.field_name(key) if key else self.where)

    def _check(self, key: str, value: Any, kind: type[T] | tuple[type, ...]) -> T:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok and float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        if not ok:
            want = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise self.fail(key, f"must be {want}, got {value!r}")
        return value

    def req(self, key: str, kind: type[T] | tuple[type, ...]) -> T:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            raise self.fail(None, f"missing required field '{self.field_name(key)}'")
        return self._check(key, self.data[key], kind)

    def opt(self, key: str, kind: type[T] | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            return default
        return self._check(key, self.data[key], kind)

    def number(self, key: str, default: float | None, *, low: float | None = None,
               high: float | None = None, required: bool = False) -> Any:
        value = self.req(key, float) if required else self.opt(key, float, default)
        if value is None:
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            rng = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            raise self.fail(key, f"{value} is out of range {rng}")
        return value

    def integer(self, key: str, default: int | None, *, low: int | None = None,
                high: int | None = None, required: bool = False) -> Any:
        value = self.req(key, int) if required else self.opt(key, int, default)
        if value is None:
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(key, f"{value} is out of range [{low}, {high}]")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None) -> Any:
        value = self.opt(key, str, default)
        if value is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def done(self) -> None:
        unknown = [k for k in self.data if k not in self.used]
        if unknown:
            k = unknown[0]
            known = ", ".join(sorted(self.used)) or "none"
            raise self.fail(k, f"unknown field '{k}' (known: {known})")
