"""Several collector instances on one database and one broker, as real processes.

What a scaled-out deployment runs (``docs/production.md``): stateless instances on one shared
subscription, against PostgreSQL. Used by the scale-out test and ``benchmarks/scale.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from simulators.broker import free_port
from simulators.processes import ChildProcess, cli_argv


class ClusterError(RuntimeError):
    """An instance did not come up."""


class CollectorCluster:
    """``size`` collector processes (ids c1, c2, ...), each with its own HTTP port."""

    def __init__(
        self,
        workdir: Path,
        *,
        db_url: str,
        broker_port: int,
        size: int,
        inventory_dir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db_url = db_url
        self.http_ports = [free_port() for _ in range(size)]
        self.instances = [
            ChildProcess(
                f"collector-c{i + 1}",
                cli_argv(
                    "collector",
                    "run",
                    "--db",
                    db_url,
                    "--broker",
                    f"127.0.0.1:{broker_port}",
                    "--http",
                    f"127.0.0.1:{port}",
                    "--instance-id",
                    f"c{i + 1}",
                    *(["--inventory", str(inventory_dir)] if inventory_dir else []),
                ),
                log_path=workdir / "logs" / f"collector-c{i + 1}.log",
                env=env,
            )
            for i, port in enumerate(self.http_ports)
        ]

    def base_url(self, index: int) -> str:
        """Where instance ``index`` serves the API."""
        return f"http://127.0.0.1:{self.http_ports[index]}"

    def start(self, *, wait: bool = True, timeout_s: float = 60.0) -> None:
        """Start every instance that is not running; with ``wait``, until each one answers."""
        for instance in self.instances:
            instance.start()
        if wait:
            for index in range(len(self.instances)):
                self.wait_ready(index, timeout_s=timeout_s)

    def wait_ready(self, index: int, *, timeout_s: float = 60.0) -> None:
        """Wait until instance ``index`` answers on /healthz and hears the broker."""
        instance = self.instances[index]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not instance.running:
                raise ClusterError(f"{instance.name} exited:\n{instance.tail()}")
            try:
                if httpx.get(f"{self.base_url(index)}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ClusterError(f"{instance.name} not ready within {timeout_s} s:\n{instance.tail()}")

    def kill(self, index: int) -> None:
        """``kill -9`` instance ``index``."""
        self.instances[index].kill()

    def restart(self, index: int) -> None:
        """Start instance ``index`` again (not waited for)."""
        self.instances[index].start()

    def stop(self) -> None:
        """Stop every instance (SIGTERM, then SIGKILL)."""
        for instance in self.instances:
            instance.stop()
