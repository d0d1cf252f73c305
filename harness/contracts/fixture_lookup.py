"""Finding the audio fixtures that scenarios name.

A scenario says ``play: speech/caller.wav``; the file is looked up, in order, as an absolute path,
next to the scenario file, under ``$HARNESS_FIXTURES``, under ``./audio_fixtures`` and under the
project's own ``audio_fixtures/``. A missing or unreadable WAV is a :class:`FixtureError` that names
the scenario file, line and field.
"""

from __future__ import annotations

import wave
from pathlib import Path

from harness.contracts.errors import FixtureError

__all__ = ["fixture_roots", "resolve_fixture"]

PROJECT_FIXTURES = Path(__file__).resolve().parents[2] / "audio_fixtures"


def fixture_roots() -> list[Path]:
    from harness.contracts.settings import Settings

    own = Settings.load().fixtures  # HARNESS_FIXTURES
    return [*([own] if own is not None else []), Path.cwd() / "audio_fixtures", PROJECT_FIXTURES]


def resolve_fixture(value: str, scenario_path: str, line: int | None, field: str) -> str:
    raw = Path(value).expanduser()
    candidates = [raw] if raw.is_absolute() else [Path(scenario_path).parent / raw] + [r / raw for r in fixture_roots()]
    for cand in candidates:
        if cand.is_file():
            _check_wav(cand, scenario_path, line, field)
            return str(cand.resolve())
    looked = ", ".join(str(c.parent) for c in candidates[:4])
    raise FixtureError(f"audio fixture '{value}' not found (looked in {looked}); "
                       "'harness fixtures build' recreates the bundled ones", scenario_path, line, field)


def _check_wav(path: Path, scenario_path: str, line: int | None, field: str) -> None:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnframes() == 0:
                raise FixtureError(f"audio fixture {path.name} is empty", scenario_path, line, field)
            if w.getsampwidth() != 2:
                raise FixtureError(f"audio fixture {path.name} must be 16-bit PCM", scenario_path, line, field)
    except (wave.Error, EOFError, OSError) as exc:
        raise FixtureError(f"audio fixture {path.name} is not a readable WAV: {exc}",
                           scenario_path, line, field) from None
