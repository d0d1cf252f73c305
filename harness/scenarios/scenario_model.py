"""The scenario model: frozen dataclasses that the loader builds and the runner reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AnswerPolicy", "PartySpec", "Scenario", "StepEntry", "Suite"]

ANSWER_MODES = ("answer", "manual", "reject", "ring")


@dataclass(frozen=True)
class AnswerPolicy:
    mode: str = "answer"
    code: int | None = None
    delay_ms: int = 0


@dataclass(frozen=True)
class PartySpec:
    name: str
    account: str
    play: str | None = None
    reference: str | None = None  # what the far end should hear; defaults to ``play``
    loop: bool = False
    record: bool = True
    register: bool = True
    answer: AnswerPolicy = AnswerPolicy()
    transfer: str = "accept"
    hold_mute: bool = True  # False: a phone that keeps sending its microphone on hold (a privacy fault)
    hold_music: str | None = None
    line: int | None = None

    @property
    def expected_audio(self) -> str | None:
        return self.reference or self.play


@dataclass(frozen=True)
class StepEntry:
    keyword: str
    step: Any
    index: int
    line: int | None

    @property
    def label(self) -> str:
        return f"step {self.index + 1} ({self.keyword})"


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    description: str = ""
    parties: dict[str, PartySpec] = field(default_factory=dict)
    steps: tuple[StepEntry, ...] = ()
    thresholds: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    timeout_s: float = 120.0
    params: dict[str, Any] = field(default_factory=dict)  # the suite's overrides this run used


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    scenarios: tuple[Scenario, ...]
    description: str = ""
