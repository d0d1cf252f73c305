"""Rules for the PBX's own call recording: missing, incomplete (too short) or one-sided.

Recording checks are named ``recording:<call>:found``, ``...:duration``, ``...:alignment`` and
``recording:<call>:<src>-><dst>:<audio check>``; which problem it is comes from the measured part (the
metric of the check's ``id``), its detail and what it measured: no file, a duration that falls short of
the call, a direction without audio. The audio rules judge the quality checks of each direction in the
recording.
"""

from __future__ import annotations

from harness.findings.evidence import Clues
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import found, rule

__all__: list[str] = []  # reached through the registry


def _where(c: Clues) -> str:
    rec = c.target.get("recordings") or {}
    if isinstance(rec, dict) and (rec.get("dir") or rec.get("url_template")):
        return f"{rec.get('dir') or rec.get('url_template')} ({rec.get('glob', '*')})"
    return "the place the target profile's 'recordings' names"


@rule("recording_problem", kinds=("recording*",), order=10)
def recording_problem(c: Clues) -> Diagnosis | None:
    part = c.name.part.lower()
    detail = str(c.check.get("detail") or "")
    text = f"{part} {detail}".lower()
    missing = any(w in text for w in ("missing", "not found", "no recording", "no file")) or \
        (c.value is None and any(w in part for w in ("exists", "found", "file")))
    if missing:
        return found(f"the PBX's recording of the call was not found: {detail or 'no file appeared'}",
                     f"check that recording is enabled for this call on the PBX, where it writes files, and that "
                     f"{_where(c)} and wait_s in the target profile match (the PBX may finish writing late)", detail)
    if c.name.part == "alignment":
        return found(f"the two directions sit {c.value} ms apart in the PBX's recording (limit "
                     f"{c.check.get('threshold')} ms): the recorder starts or mixes the two streams at different "
                     "times", "record both streams from the same point (the bridge), or fix the recorder's "
                     "timestamps", detail)
    one_sided = any(w in text for w in ("one-sided", "one side", "silent", "no audio")) or \
        (c.name.direction is not None and c.name.part in ("", "audio_present"))
    if one_sided:
        side = c.name.subject if c.name.direction else "one direction"
        return found(f"the PBX's recording is one-sided: {side} has no audio in it ({detail or c.value}): the "
                     "recorder taps only one leg or one stream direction",
                     "record both directions (mixed or stereo) on the PBX, and record at the bridge rather than on "
                     "one leg", detail)
    if c.name.direction is not None:
        return None  # the audio rules judge the quality of each direction in the recording
    if "duration" in text or "incomplete" in text or "short" in text:
        return found(f"the PBX's recording is incomplete: {detail or c.value}: it started late or stopped early "
                     "(recording triggered on answer of another leg, a storage or size limit, a crash of the "
                     "recorder)", "check when the PBX starts and stops recording for this call flow, and its "
                     "recorder's log and free disk space", detail)
    return None
