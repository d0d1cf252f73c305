"""Integration fixtures: one real lab PBX (kamailio + rtpengine) for the session, on its own ports."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lab import LabConfig, LabStack

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "audio_fixtures"
# ports apart from the lab's defaults, so a developer's running lab does not collide with the tests;
# HARNESS_TEST_PORT_BASE moves them (two test sessions side by side need different bases)
_BASE = int(os.environ.get("HARNESS_TEST_PORT_BASE", "36000"))
TEST_LAB = LabConfig(ip="127.0.0.1", sip_port=_BASE + 60, ng_port=_BASE + 222, rtp_min=_BASE + 300,
                     rtp_max=_BASE + 899)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def lab(lab_home: Path) -> Iterator[LabStack]:
    missing = [b for b in ("kamailio", "rtpengine") if shutil.which(b) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/setup.sh")
    stack = LabStack(lab_home / "lab", TEST_LAB)
    stack.start()
    yield stack
    stack.stop()


def write_scenario(dir: Path, text: str, name: str = "scenario.yaml") -> Path:
    """A scenario file whose fixture paths point at the project's audio_fixtures/."""
    p = dir / name
    p.write_text(textwrap.dedent(text).lstrip().replace("FIX/", f"{FIXTURES}/"))
    return p
