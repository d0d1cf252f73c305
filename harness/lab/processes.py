"""The lab's daemons as processes: is a pid still ours, is a port free, and stopping a process group in
bounded time (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

__all__ = ["pid_alive", "port_free", "terminate_group"]


def pid_alive(pid: int, binary: str) -> bool:
    """True when ``pid`` runs and is ``binary`` (guards against a recycled pid)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return Path(cmdline).name == binary


def port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def terminate_group(pid: int, timeout: float) -> None:
    """SIGTERM the process group ``pid`` leads, SIGKILL it after ``timeout``; returns once it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid if not _exists(pid) else 0
            if done:
                return
            time.sleep(0.02)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False
