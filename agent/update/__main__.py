"""``python -m agent.update VERB -c CONFIG``

- ``status``: what runs, what a rollback would go back to, and the last attempt (JSON);
- ``rollback``: switch back to the previous version by hand and restart (a technician);
- ``apply`` / ``resume``: the guard, started detached by the agent itself;
- ``selftest``: one health evaluation of this environment's code (the fleet's probe).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from agent import __version__
from agent.config import load_config
from agent.errors import EdgeError
from agent.update.guard import apply, refusal, resume, roll_back
from agent.update.layout import Journal
from agent.update.probes import ConfirmFileProbe
from agent.update.settings import guard_settings, service_of
from contracts.errors import ContractError
from contracts.release_manifest import parse_offer


def _selftest(config: Path) -> int:
    """One health evaluation of this environment's code on the device's config."""
    from agent.assembly import build_daemon
    from agent.health import AgentHealth

    daemon = build_daemon(load_config(config))
    daemon.start()
    try:
        report = AgentHealth(daemon).evaluate()
    finally:
        daemon.stop()
    print(json.dumps({"version": __version__, "alive": report.alive,
                      "failures": report.failures()}))
    return 0 if report.alive else 1


def _status(config: Path) -> int:
    layout = guard_settings(load_config(config)).layout
    journal = layout.read_journal()
    print(json.dumps({
        "current": layout.version_of(layout.current_env()),
        "previous": layout.version_of(layout.previous_env()),
        "last_update": None if journal is None else asdict(journal)}, indent=1))
    return 0


def _rollback_by_hand(config: Path) -> int:
    cfg = load_config(config)
    layout = guard_settings(cfg).layout
    current, previous = layout.current_env(), layout.previous_env()
    if current is None or previous is None or current == previous:
        print(f"error: nothing to roll back to: {layout.previous} does not point at another "
              "installed version", file=sys.stderr)
        return 2
    journal = Journal("switched", layout.version_of(current), layout.version_of(previous),
                      "manual", from_env=str(previous))
    done = roll_back(layout, journal, service_of(cfg), "rolled back by hand")
    print(f"{done.state}: now on {layout.version_of(layout.current_env())}")
    return 0


def _guard(verb: str, config: Path) -> int:
    cfg = load_config(config)
    settings = guard_settings(cfg)
    layout = settings.layout
    layout.ensure()
    handler = logging.FileHandler(layout.root / "guard.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler, logging.StreamHandler()])
    service = service_of(cfg)
    probe = ConfirmFileProbe(layout)
    journal: Journal | None
    if verb == "apply":
        offer = parse_offer(layout.offer_path.read_bytes())
        why_not = refusal(offer, layout.version_of(layout.current_env()), layout.read_journal())
        if why_not is not None:
            print(f"error: release {offer.version} not installed: {why_not}", file=sys.stderr)
            return 2
        journal = apply(settings, offer, service, probe)
    else:
        journal = resume(layout, service, probe)
    print(json.dumps(None if journal is None else {"state": journal.state,
                                                   "reason": journal.reason}))
    return 0 if journal is None or journal.state in ("confirmed",) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.update")
    parser.add_argument("verb", choices=("status", "rollback", "apply", "resume", "selftest"))
    parser.add_argument("-c", "--config", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.verb == "selftest":
            return _selftest(args.config)
        if args.verb == "status":
            return _status(args.config)
        if args.verb == "rollback":
            return _rollback_by_hand(args.config)
        return _guard(args.verb, args.config)
    except (EdgeError, ContractError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
