"""A mosquitto broker run as a child process with a generated config (demo, tests, scenarios)."""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from simulators.processes import spawn

# Ports handed out by free_port on this machine, and for how long they stay taken.
_PORT_REGISTRY = Path(tempfile.gettempdir()) / f"shelterwatch-ports-{os.getuid()}.txt"
_PORT_QUARANTINE_S = 3600  # longer than a test run; the range holds ~28,000 ports


class BrokerError(RuntimeError):
    """The broker could not be started."""


def free_port() -> int:
    """A TCP port free on the loopback interface now and not handed out here recently.

    Not reused, because a client of an earlier broker (a collector or an agent whose broker
    was stopped, in another test or another test worker) goes on reconnecting to its old port:
    landing on a new broker there, a collector joins its shared subscription and takes a share
    of its messages. Every process on the machine shares the registry, under a file lock.
    """
    with _PORT_REGISTRY.open("a+") as registry:
        fcntl.flock(registry, fcntl.LOCK_EX)
        registry.seek(0)
        now = time.time()
        recent: dict[int, float] = {}
        for line in registry.read().splitlines():
            with contextlib.suppress(ValueError):
                port_s, at_s = line.split()
                if now - float(at_s) < _PORT_QUARANTINE_S:
                    recent[int(port_s)] = float(at_s)
        for _ in range(100):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in recent:
                break
        recent[port] = now
        registry.seek(0)
        registry.truncate()
        registry.write("".join(f"{p} {at:.0f}\n" for p, at in recent.items()))
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def find_mosquitto() -> str:
    """Path of the mosquitto binary, or a clear error saying how to install it."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    if not found:
        raise BrokerError("mosquitto not found: install it with `apt-get install mosquitto`")
    return found


class MosquittoProcess:
    """One mosquitto child process on a fixed port, which can be stopped, killed and restarted;
    it dies with this process (``simulators.processes.spawn``).

    Persistence is on (with a short autosave) so persistent sessions survive a clean restart,
    as in production; a ``kill -9`` loses what the last snapshot did not hold, which is what
    the application-level ack is for.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        extra_config: str = "",
        max_connections: int = -1,
        include_dir: Path | None = None,
    ) -> None:
        """``include_dir``: a folder of ``*.conf`` included last, as a production broker
        includes the hardening enrolment writes (``simulators.secured_broker``); its access
        control and limits then replace this class's open defaults."""
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self._extra = extra_config
        self._max_connections = max_connections
        self._include_dir = include_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"

    @property
    def host(self) -> str:
        """Loopback address the broker listens on."""
        return "127.0.0.1"

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        # Open and unlimited, unless the included hardening says otherwise.
        open_defaults = (
            ""
            if self._include_dir is not None
            else "allow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\n"
        )
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # Run as whoever starts the tests: mosquitto started as root otherwise switches to
            # the `mosquitto` user and can no longer write its persistence file here.
            f"user {getpass.getuser()}\n"
            + open_defaults
            + f"max_connections {self._max_connections}\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            + self._extra
            # mosquitto: best as the last option of the main file.
            + (f"include_dir {self._include_dir.resolve()}\n" if self._include_dir else "")
        )
        return conf

    def start(self, *, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        if self._proc is not None and self._proc.poll() is None:
            return
        if port_in_use(self.port):
            raise BrokerError(f"port {self.port} is already in use: choose another broker port")
        conf = self._write_config()
        with self.log_path.open("ab") as log:
            self._proc = spawn(
                [find_mosquitto(), "-c", str(conf)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {self._proc.returncode}: "
                    f"{self.log_path.read_text(errors='replace')[-500:]}"
                )
            if port_in_use(self.port):
                return
            time.sleep(0.02)
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        """Stop cleanly (SIGTERM: the broker writes its persistence file)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """``kill -9``: whatever the last autosave did not hold is lost."""
        self._signal(signal.SIGKILL)

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        # The port can linger briefly after exit; wait so a restart can bind it.
        deadline = time.monotonic() + 5
        while port_in_use(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def __enter__(self) -> MosquittoProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
