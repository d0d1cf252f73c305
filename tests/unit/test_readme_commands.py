"""Every command line README.md shows is run, as written, by an integration test.

The command lines are those of README.md's ```sh blocks, and the complete commands it quotes inline
(`harness fixtures build`; a synopsis with placeholders such as `harness report [RUN_DIR]` is not a
command line). Each must appear as a string, exactly (a trailing shell comment aside), in a file under
tests/integration/: a new README line without a test fails here. Lines that cannot run inside the test suite
are listed below with the reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
INTEGRATION = REPO / "tests" / "integration"

#: command lines no integration test runs, and why
NOT_RUN_BY_TESTS = {
    "scripts/test.sh": "it is what CI runs: ruff, mypy and this very test suite",
    ". .venv/bin/activate": "shell set-up; the tests put .venv/bin first on PATH instead (integration/cli_lines.py)",
    "harness run": "the inline `harness run` names the command in prose; its command lines are tested",
}

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.M | re.S)
_PLACEHOLDER = re.compile(r"\[|\.\.\.|\b[A-Z][A-Z_]+\b")  # [--out FILE], RUN_DIR, PROFILE


def strip_comment(line: str) -> str:
    """The line without a trailing shell comment (a ``#`` after blank space, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_command_lines(text: str) -> list[str]:
    """The command lines of ```sh blocks, then the complete commands quoted inline in the prose."""
    lines = []
    for lang, body in _FENCE.findall(text):
        if lang.strip() in ("sh", "bash", "shell", "console"):
            lines += [c for c in (strip_comment(ln.strip()) for ln in body.splitlines()) if c]
    prose = _FENCE.sub("", text)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if re.match(r"(harness|scripts/\S+)( |$)", span) and span != "harness" and not _PLACEHOLDER.search(span):
            lines.append(span.strip())
    return list(dict.fromkeys(lines))


def integration_test_strings() -> set[str]:
    """Every string constant of the integration tests, also without a trailing shell comment."""
    found: set[str] = set()
    for path in sorted(INTEGRATION.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found |= {node.value, strip_comment(node.value.strip())}
    return found


def test_the_parser_finds_the_readme_command_lines() -> None:
    lines = readme_command_lines(README.read_text())
    assert lines[:2] == ["scripts/nightly.sh", "scripts/test.sh"]
    for expected in ("harness lab up", "harness run scenarios/connect.yaml --target my-pbx.yaml --out reports/tonight",
                     'harness findings note 7 "agent 2001\'s phone had a stale password"',
                     "harness run --only-failed", "harness fixtures build", "harness lab up --netns"):
        assert expected in lines
    assert not [ln for ln in lines if "#" in ln or ln.startswith("harness report") or "PROFILE" in ln]


def test_every_readme_command_line_is_run_by_an_integration_test() -> None:
    lines = readme_command_lines(README.read_text())
    tested = integration_test_strings()
    missing = [ln for ln in lines if ln not in tested and ln not in NOT_RUN_BY_TESTS]
    assert not missing, ("README.md command lines that no integration test runs as written (add a test under "
                         f"tests/integration/ with cli_lines.sh(), or list the line with its reason): {missing}")


def test_a_new_readme_line_without_a_test_is_reported() -> None:
    text = README.read_text() + "\n```sh\nharness lab up --a-new-flag   # what it does\n```\n"
    tested = integration_test_strings()
    missing = [ln for ln in readme_command_lines(text) if ln not in tested and ln not in NOT_RUN_BY_TESTS]
    assert missing == ["harness lab up --a-new-flag"]


def test_the_allow_list_names_only_readme_lines() -> None:
    lines = readme_command_lines(README.read_text())
    stale = [ln for ln in NOT_RUN_BY_TESTS if ln not in lines]
    assert not stale, f"no longer in README.md: {stale}"


def test_comments_are_stripped_outside_quotes_only() -> None:
    assert strip_comment('harness findings note 7 "it\'s # not a comment"   # cause') == \
        'harness findings note 7 "it\'s # not a comment"'
    assert strip_comment("harness lab up  # starts it") == "harness lab up"
    assert strip_comment("ls a#b") == "ls a#b"
    assert strip_comment("# only a comment") == ""


def test_validate_accepts_every_file_in_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    """`harness validate scenarios/*.yaml` (README): scenarios, suites and the load profile all pass."""
    monkeypatch.chdir(REPO)
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "scenarios").glob("*.yaml"))
    res = CliRunner().invoke(cli, ["validate", *files])
    assert res.exit_code == 0, res.output
    assert "ok  load-smoke  (scenarios/load-smoke.yaml, load profile: 5 stages, 16 s, mode rate)" in res.output
