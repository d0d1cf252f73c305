"""The jitter buffer's discard algorithm, which this pjsua2 wheel's binding cannot set directly.

SWIG exposes ``MediaConfig.jbDiscardAlgo`` only as an opaque pointer to the enum
``pjmedia_jb_discard_algo``: no int setter, no enum constants. Its getter returns a pointer to a fresh
copy of the value; :func:`set_jb_discard` writes the value into that copy and hands it back to the setter,
which copies it into the config, then reads it back. This module loads nothing of pjsua2 itself.

SWIG knows no destructor for that type: each pointer its getter hands out is 4 bytes it cannot free, and
it prints a "memory leak" warning into the party's log when the Python object goes. This module disowns
the few it takes (three per party process), which leaves the 4 bytes each and the log clean.
"""

from __future__ import annotations

import ctypes
from typing import Any

__all__ = ["JB_DISCARD", "jb_discard_of", "set_jb_discard"]

#: pjmedia_jb_discard_algo (pjmedia/jbuf.h); pjsua's default is progressive
JB_DISCARD = {"none": 0, "static": 1, "progressive": 2}


def _ref(med_config: Any) -> Any:
    ref = med_config.jbDiscardAlgo
    if hasattr(ref, "disown"):
        ref.disown()
    return ref


def jb_discard_of(med_config: Any) -> str:
    """The discard algorithm a ``pjsua2.MediaConfig`` holds."""
    value = ctypes.c_int.from_address(int(_ref(med_config))).value
    for name, v in JB_DISCARD.items():
        if v == value:
            return name
    raise ValueError(f"unknown jitter buffer discard algorithm {value}")


def set_jb_discard(med_config: Any, algo: str) -> None:
    """Set a ``pjsua2.MediaConfig``'s discard algorithm (a name of :data:`JB_DISCARD`)."""
    if algo not in JB_DISCARD:
        raise ValueError(f"unknown jitter buffer discard algorithm {algo!r} (one of {', '.join(JB_DISCARD)})")
    ref = _ref(med_config)
    ctypes.c_int.from_address(int(ref)).value = JB_DISCARD[algo]
    med_config.jbDiscardAlgo = ref
    if jb_discard_of(med_config) != algo:
        raise RuntimeError(f"pjsua2 did not take the jitter buffer discard algorithm {algo!r}")
