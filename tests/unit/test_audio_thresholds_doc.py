"""docs/thresholds.md states every audio threshold's default and source: it must match the code."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from harness.audio import CHECK_NAMES, Thresholds

DOC = Path(__file__).resolve().parents[2] / "docs" / "thresholds.md"
ROW = re.compile(
    r"^\|\s*`(?P<name>[a-z0-9_]+)`\s*\|\s*(?P<value>[-+0-9.]+)\s*\|\s*(?P<unit>[^|]*)\|\s*(?P<check>[^|]*)\|(?P<src>.*)\|\s*$"
)


def _table(section: str = "Audio") -> dict[str, tuple[float, str, str]]:
    rows: dict[str, tuple[float, str, str]] = {}
    text = DOC.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            assert m["name"] not in rows, f"{m['name']} is listed twice"
            rows[m["name"]] = (float(m["value"]), m["check"].strip(), m["src"].strip())
    return rows


def test_the_table_lists_every_threshold_with_the_codes_default() -> None:
    table = _table()
    code = Thresholds().to_dict()
    assert set(table) == set(code), (
        f"only in the doc: {set(table) - set(code)}, only in the code: {set(code) - set(table)}"
    )
    wrong = {name: (table[name][0], value) for name, value in code.items() if table[name][0] != value}
    assert not wrong, f"doc vs code defaults differ: {wrong}"


def test_every_row_names_a_real_check_and_a_source() -> None:
    for name, (_, check, source) in _table().items():
        assert check in CHECK_NAMES, f"{name}: unknown check {check!r}"
        assert len(source) > 20, f"{name}: no source given"


def test_every_threshold_is_overridable_by_name() -> None:
    for f in fields(Thresholds):
        value = getattr(Thresholds(), f.name)
        assert getattr(Thresholds.from_mapping({f.name: value}), f.name) == value


def test_the_call_and_health_tables_match_the_code() -> None:
    from harness.contracts.thresholds import DEFAULT_THRESHOLDS, HealthLimits

    for section, code in (("Calls and system", DEFAULT_THRESHOLDS), ("Harness health", HealthLimits().as_dict())):
        table = _table(section)
        assert set(table) == set(code), f"{section}: doc {sorted(set(table) - set(code))}, code " \
                                        f"{sorted(set(code) - set(table))}"
        assert {k: v[0] for k, v in table.items()} == {k: float(v) for k, v in code.items()}, section
        assert all(len(src) > 20 for _, _, src in table.values()), section
