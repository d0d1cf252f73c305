"""The architecture's rules (docs/architecture.md), read from the source: module size, one name per
module, one exception tree drawn where it is defined, no check name built as text, every HARNESS_*
variable read in one place, no import cycle between modules."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

from harness.contracts import errors

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "harness"
MAX_LINES = 450


def modules() -> list[Path]:
    return sorted(p for p in HARNESS.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_is_over_450_lines() -> None:
    big = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, big


def test_no_two_modules_share_a_name() -> None:
    names = Counter(p.name for p in modules() if p.name not in ("__init__.py", "__main__.py"))
    assert not [n for n, c in names.items() if c > 1], [n for n, c in names.items() if c > 1]


def test_the_drawn_exception_tree_is_the_real_one() -> None:
    doc = errors.__doc__ or ""
    drawn = {}
    for line in doc.splitlines():
        m = re.match(r"^\s*([│ ]*)(?:[├└]── )?([A-Z]\w+)\s{2,}", line)
        if m and (m.group(2).endswith(("Error", "Failure", "Missing", "Failed", "Crashed", "Timeout", "Finding"))):
            drawn[m.group(2)] = len(m.group(1)) + (4 if "──" in line else 0)
    real: dict[str, str] = {}

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__ == errors.__name__ and not sub.__name__.startswith("_"):
                real[sub.__name__] = cls.__name__
            walk(sub)

    walk(errors.HarnessError)
    assert set(drawn) - {"HarnessError"} == set(real), (set(drawn) ^ set(real))
    # and each is drawn under its parent: its indent is one step deeper than the parent's
    for name, parent in real.items():
        if parent in drawn and parent != "HarnessError":
            assert drawn[name] > drawn[parent], (name, parent)


def test_every_harness_error_is_defined_in_the_one_tree() -> None:
    defined = []
    for p in modules():
        if p == HARNESS / "contracts" / "errors.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & {"HarnessError", "InputError", "LabError", "PartyError"}:
                    defined.append(f"{p.relative_to(ROOT)}:{node.name}")
    assert not defined, defined


def test_no_check_name_is_built_as_text() -> None:
    """Check names are CheckName values; the old mini-language (f"audio:{label}:{src}->{dst}") is gone."""
    pattern = re.compile(r'CheckResult(?:\.compare|\.error)?\(\s*f?"[a-z_]+:|\.name = f"|name = f"[a-z_]+:\{')
    hits = []
    for p in modules():
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, hits


def test_harness_variables_are_read_in_one_place() -> None:
    readers = []
    for p in modules():
        text = p.read_text()
        if p.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(text)):  # a variable's bare name as a value is a reader in the making
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.fullmatch(r"HARNESS_[A-Z_]+", node.value) and node.value != "HARNESS_CHECK":
                readers.append(f"{p.relative_to(ROOT)}:{node.lineno}: {node.value}")
        for m in re.finditer(r'(?:environ(?:\.get)?\(|environ\[|getenv\()\s*"(HARNESS_\w+)"', text):
            readers.append(f"{p.relative_to(ROOT)}: {m.group(1)}")
        if re.search(r'envvar="HARNESS_', text):
            readers.append(f"{p.relative_to(ROOT)}: click envvar")
    assert not readers, readers


def _imports(path: Path, known: set[str]) -> set[str]:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("harness."):
                out.add(t)
    return out


def test_no_import_cycle_between_modules() -> None:
    paths = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in modules()}
    known = set(paths)
    graph = {m: _imports(p, known) for m, p in paths.items()}
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles
