"""``python -m connector.emulator --scenario demo --port 8765 --token T`` for manual checks."""

from __future__ import annotations

import argparse
import os
from datetime import date

from connector.emulator import SCENARIO_NAMES, Emulator, scenario_by_name


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m connector.emulator")
    parser.add_argument("--scenario", default="demo", choices=SCENARIO_NAMES)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=os.environ.get("MOODLE_TOKEN", "emulator-token"))
    parser.add_argument("--weak-token", default="emulator-weak")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--moodle", choices=("4.1", "4.5"), default="4.1")
    args = parser.parse_args()
    scenario = scenario_by_name(args.scenario, date.today())
    emulator = Emulator(
        scenario,
        tokens={args.token: "full", args.weak_token: "weak"},
        port=args.port,
        latency_ms=args.latency_ms,
        workers=args.workers,
        moodle=args.moodle,
    )
    emulator.start()
    print(f"Moodle emulator ({args.scenario}) at {emulator.url}; Ctrl+C stops it", flush=True)
    emulator.serve_forever()


if __name__ == "__main__":
    main()
