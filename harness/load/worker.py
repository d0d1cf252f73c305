"""A Locust worker process of ``harness load --workers N``: ``python -m harness.load.worker``.

Started by :mod:`harness.load.run` with the plan (target, numbers and any password) as one JSON line
on stdin. It connects to the master on loopback, runs its share of the users on its own
:class:`~harness.load.engine.LoadEngine` (one UDP socket), ships its recordings with every Locust
report, and when told to stop, drains its calls and sends what is left as ``harness_drained``.
It quits when the master says so, when the master is gone (Locust's heartbeat), or at
``--deadline-s`` at the latest.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.load.worker")
    ap.add_argument("--master-host", default="127.0.0.1")
    ap.add_argument("--master-port", type=int, required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--deadline-s", type=float, default=900.0)
    ap.add_argument("--drain-s", type=float, default=10.0)
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    if args.master_host not in ("127.0.0.1", "localhost"):
        print("the load master runs on loopback only", file=sys.stderr)
        return 2
    raw = sys.stdin.readline()
    import gevent
    from locust.env import Environment

    from harness.load.engine import LoadEngine
    from harness.load.plan import UacPlan
    from harness.load.profile import load_profile
    from harness.load.users import attach_engine, make_user_class

    if args.log:
        logger = logging.getLogger("locust")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(logging.FileHandler(args.log))
    plan = UacPlan.from_wire(json.loads(raw))
    profile = load_profile(Path(args.profile))
    env = Environment(user_classes=[make_user_class(profile)], stop_timeout=0)
    engine = LoadEngine(plan, fire=env.events.request.fire, poisson=profile.arrival == "poisson")
    attach_engine(env, engine)
    engine.start()
    runner = env.create_worker_runner(args.master_host, args.master_port)

    def on_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        data["harness_load"] = engine.recorder.drain()

    drained: list[gevent.Greenlet] = []

    def drain_and_report() -> None:
        engine.drain(args.drain_s)
        for text in engine.flow_errors:
            logging.getLogger("locust").error("load flow error:\n%s", text)
        runner.send_message("harness_drained", engine.recorder.drain())

    def on_stop(**_kw: Any) -> None:
        if not drained:  # test_stop fires on "stop" and again on "quit": drain once
            drained.append(gevent.spawn(drain_and_report))

    def on_start(environment: Any, msg: Any, **_kw: Any) -> None:
        """Rate mode: follow the timeline from the master's start time, with an equal share."""
        import time

        t0 = engine.clock.now() - (time.time() - float(msg.data["t0_wall"]))
        engine.follow(profile.timeline, t0, 1.0 / max(1, int(msg.data["workers"])))

    runner.register_message("harness_start", on_start)
    env.events.report_to_master.add_listener(on_report)
    env.events.test_stop.add_listener(on_stop)
    gevent.spawn_later(args.deadline_s, runner.quit)  # never outlive the run, whatever the master does
    try:
        runner.greenlet.join()
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
