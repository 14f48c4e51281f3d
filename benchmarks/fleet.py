"""Fleet benchmark: 15,000 virtual agents, each on its own MQTT connection, from one process.

Run: ``.venv/bin/python -m benchmarks.fleet`` (about two minutes). Steady traffic is one message
per agent per minute; then a storm: 2,000 sites raise 5 alarms each within 4 seconds. No
collector runs here (the ingest benchmark measures that side), so nothing is acked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from benchmarks._machine import print_machine
from clocks import SystemClock
from simulators.broker import MosquittoProcess
from simulators.fleet import Fleet, FleetConfig


def main() -> None:
    """Run the fleet against a private mosquitto and print the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=15_000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--storm-sites", type=int, default=2_000)
    parser.add_argument("--storm-window", type=float, default=4.0)
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory(prefix="sw-bench-fleet-") as tmp:
        broker = MosquittoProcess(Path(tmp) / "broker", max_connections=-1)
        broker.start()
        try:
            fleet = Fleet(
                FleetConfig(
                    host=broker.host,
                    port=broker.port,
                    agents=args.agents,
                    storm_sites=args.storm_sites,
                    storm_at_s=args.duration / 2,
                    storm_window_s=args.storm_window,
                    alarm_share=0.1,
                ),
                clock=SystemClock(),
            )
            report = asyncio.run(fleet.run(duration_s=args.duration, drain_s=0.0))
        finally:
            broker.stop()
    print(
        json.dumps(
            {
                "agents_connected": report.agents_connected,
                "connect_failures": report.connect_failures,
                "msgs_per_s_offered": report.storm_msgs_per_s_offered,
                "steady_msgs_per_s_offered": report.msgs_per_s_offered,
                "offered": report.offered,
                "duration_s": report.duration_s,
            }
        )
    )


if __name__ == "__main__":
    main()
