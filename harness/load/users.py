"""Locust glue: the User classes and the LoadTestShape of a profile, and the engine they share.

Imports locust inside the functions (importing locust monkey-patches the process with gevent), so
only a load run pays for it.

- ``rate`` mode (open loop): the engine's pacer follows the timeline itself (exact to milliseconds,
  where Locust's shape ticks once a second) and issues new transactions evenly spaced or as a
  Poisson process; calls never wait for each other, so a slow PBX meets the same offered load, as
  with SIPp's ``-r``. Locust's users only show the load (one user per ``per_user`` calls/s).
- ``concurrent`` mode: each user keeps one call up at a time (call, hold, BYE, again), so the user
  count is the number of calls held; users start at random points within ``start_jitter_s``.

The shape ticks once a second: Locust's user count follows the timeline; ``None`` ends the run.
The engine lives on the Locust Environment (one per process), never in a module global.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from harness.load.profile import LoadProfile
from harness.load.shapes import users_for

if TYPE_CHECKING:
    from harness.load.engine import LoadEngine

__all__ = ["attach_engine", "engine_of", "make_shape", "make_user_class"]

ENGINE_ATTR = "harness_load_engine"
USER_CLASS_NAMES = {"rate": "SipRateUser", "concurrent": "SipCallUser"}


def attach_engine(environment: Any, engine: LoadEngine) -> None:
    setattr(environment, ENGINE_ATTR, engine)


def engine_of(environment: Any) -> LoadEngine:
    engine: LoadEngine | None = getattr(environment, ENGINE_ATTR, None)
    if engine is None:
        raise RuntimeError("no load engine attached to this Locust environment")
    return engine


def make_user_class(profile: LoadProfile) -> type:
    """The one User class of ``profile``'s mode (same name in master and workers)."""
    import gevent
    from locust import User, constant, task

    jitter = profile.start_jitter_s

    class SipRateUser(User):
        """Stands for ``per_user`` calls/s of the open-loop rate; the engine's pacer issues them."""

        wait_time = constant(3600)

        @task
        def show(self) -> None:
            gevent.sleep(3600)

    class SipCallUser(User):
        """Keeps one transaction of the mix (a held call, mostly) going at a time."""

        wait_time = constant(0)

        def on_start(self) -> None:
            gevent.sleep(random.uniform(0.0, jitter))

        @task
        def one(self) -> None:
            if not engine_of(self.environment).run_one():
                gevent.sleep(0.5)  # over a bound (or draining): do not spin

    cls: type = SipRateUser if profile.mode == "rate" else SipCallUser
    return cls


def make_shape(profile: LoadProfile) -> Any:
    """A LoadTestShape instance following ``profile``'s timeline; it ends the run when the timeline does."""
    from locust import LoadTestShape

    timeline = profile.timeline
    per_user = profile.per_user

    class ProfileShape(LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            value = timeline.value_at(self.get_run_time())
            if value is None:
                return None
            users = users_for(value, per_user)
            # users join within about a second (each then waits its own start jitter)
            return users, float(max(10, users))

    return ProfileShape()
