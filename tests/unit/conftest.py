"""Fixtures the unit tests share: the committed reference speech, read once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.audio.wavio import read_wav

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"


@pytest.fixture(scope="session")
def caller() -> np.ndarray:
    """The caller's reference speech (8 kHz)."""
    return read_wav(FIX / "speech" / "caller.wav")[0]


@pytest.fixture(scope="session")
def agent() -> np.ndarray:
    """The agent's reference speech (8 kHz)."""
    return read_wav(FIX / "speech" / "agent.wav")[0]
