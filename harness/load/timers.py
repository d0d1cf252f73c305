"""RFC 3261 client transaction timers over UDP (section 17.1), with the clock passed in.

Pure state: the caller asks when the next timer is due, waits (for a response or until then), and
calls :meth:`ClientTimers.fire` or :meth:`ClientTimers.response`. Unit tests drive it with a fake clock::

    t = ClientTimers(invite=True, now=0.0, policy=TimerPolicy(t1=0.5))
    t.next_due()          # 0.5: Timer A
    t.fire(0.5)           # Action.RETRANSMIT; next at 1.5, then 3.5, 7.5 ... Timer B at 32.0 -> TIMEOUT

- INVITE: Timer A retransmits at T1, 2*T1, 4*T1 ... until a provisional response (Calling state);
  Timer B times out at 64*T1. In Proceeding (after a 1xx) nothing is retransmitted and the TU's own
  ``proceeding_timeout`` (how long to let it ring) replaces Timer B.
- non-INVITE: Timer E retransmits at T1 doubling up to T2; after a 1xx every T2. Timer F at 64*T1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

__all__ = ["Action", "ClientTimers", "TimerPolicy"]


class Action(Enum):
    WAIT = "wait"
    RETRANSMIT = "retransmit"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class TimerPolicy:
    t1: float = 0.5
    t2: float = 4.0

    @property
    def timeout(self) -> float:
        """Timers B and F: 64*T1."""
        return 64.0 * self.t1


class ClientTimers:
    __slots__ = ("_due", "deadline", "interval", "invite", "next_retransmit", "policy", "proceeding",
                 "proceeding_timeout", "retransmits")

    def __init__(self, *, invite: bool, now: float, policy: TimerPolicy = TimerPolicy(),
                 proceeding_timeout: float | None = None):
        self.invite, self.policy = invite, policy
        self.interval = policy.t1
        self.next_retransmit = now + policy.t1
        self.deadline = now + policy.timeout
        self.proceeding = False
        self.proceeding_timeout = proceeding_timeout
        self.retransmits = 0
        self._due = self.next_retransmit

    def next_due(self) -> float:
        """When :meth:`fire` has something to do (a retransmission or the timeout)."""
        return self._due

    def extend(self, deadline: float) -> None:
        """A new time limit (the TU's: e.g. 64*T1 for the final response once a CANCEL is sent)."""
        self.deadline = deadline
        self._set_due()

    def _set_due(self) -> None:
        self._due = self.next_retransmit if self.next_retransmit < self.deadline else self.deadline

    def fire(self, now: float) -> Action:
        if now >= self.deadline:
            return Action.TIMEOUT
        if now < self.next_retransmit:
            return Action.WAIT
        self.retransmits += 1
        if self.invite:
            self.interval *= 2.0  # Timer A doubles without a cap
        elif self.proceeding:
            self.interval = self.policy.t2
        else:
            self.interval = min(self.interval * 2.0, self.policy.t2)  # Timer E
        self.next_retransmit = now + self.interval
        self._set_due()
        return Action.RETRANSMIT

    def response(self, status: int, now: float) -> bool:
        """Note a response; True when it is final (the transaction is complete)."""
        if status >= 200:
            self.next_retransmit = self.deadline = self._due = math.inf
            return True
        if not self.proceeding:
            self.proceeding = True
            if self.invite:
                self.next_retransmit = math.inf  # Proceeding: an INVITE is not retransmitted
                if self.proceeding_timeout is not None:
                    self.deadline = now + self.proceeding_timeout
                else:
                    self.deadline = math.inf
            else:
                self.interval = self.policy.t2  # Timer E fires at T2 from here on
            self._set_due()
        return False
