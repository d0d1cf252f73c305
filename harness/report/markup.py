"""HTML built so that escaping cannot be forgotten: text is escaped unless it is already :class:`Markup`.

Everything in a report that comes from a run (SIP headers, display names, log lines, scenario names,
finding notes) is attacker-controllable: a PBX under test, or anyone who can send it a SIP message,
writes into it. So no code here concatenates raw strings into HTML. :func:`el` escapes every child
that is not ``Markup`` and every attribute value; only this module makes ``Markup`` from plain text::

    >>> el("td", "<script>", class_="v")
    Markup('<td class="v">&lt;script&gt;</td>')
    >>> el("p", el("b", "ok"), " & more")
    Markup('<p><b>ok</b> &amp; more</p>')
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Union

__all__ = ["Child", "Markup", "el", "esc", "join", "raw_trusted", "void"]


class Markup(str):
    """A string that is already safe HTML (made here from escaped parts or from our own constants)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Markup({str.__repr__(self)})"


Child = Union[str, int, float, "Markup", None, Iterable["Child"]]


def esc(value: object) -> Markup:
    """Escape text for element content and attribute values (quotes included)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def raw_trusted(text: str) -> Markup:
    """Mark a constant written in this package (CSS, our own script) as HTML. Never for run data."""
    return Markup(text)


def _children(children: Iterable[Child]) -> str:
    out: list[str] = []
    for c in children:
        if c is None:
            continue
        if isinstance(c, Markup):
            out.append(c)
        elif isinstance(c, str | int | float):
            out.append(esc(c))
        else:
            out.append(_children(c))
    return "".join(out)


def _attrs(attrs: dict[str, object]) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        if not name.replace("-", "").replace(":", "").isalnum():
            raise ValueError(f"bad attribute name {key!r}")
        parts.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(parts)


def el(tag: str, *children: Child, **attrs: object) -> Markup:
    """``<tag attrs>children</tag>``; ``class_="x"`` gives ``class="x"``, ``data_x`` gives ``data-x``."""
    return Markup(f"<{tag}{_attrs(attrs)}>{_children(children)}</{tag}>")


def void(tag: str, **attrs: object) -> Markup:
    """An element with no content and no end tag (``<img>``, ``<meta>``, ``<br>``)."""
    return Markup(f"<{tag}{_attrs(attrs)}>")


def join(parts: Iterable[Child], sep: str = "") -> Markup:
    return Markup(esc(sep).join(_children([p]) for p in parts))
