"""The agent's local status socket, read by ``shelterwatch agent check`` on site."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# sun_path holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH = 107
# Connecting to a Unix socket needs write permission on it: the agent's group (the technicians
# of docs/deployment-pi.md) may, others may not. bind() would leave it to the umask, and the
# unit's UMask=0027 takes the group's write away.
SOCKET_MODE = 0o660


def status_socket_path(outbox_path: Path) -> Path:
    """The status socket lives beside the outbox, on the writable data partition; when that
    path is too long for a Unix socket, in the temporary directory under a name derived from
    it, so the agent and ``agent check`` still agree."""
    beside = outbox_path.with_name("agent.sock")
    if len(str(beside.absolute()).encode()) <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(str(beside.absolute()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"shelterwatch-{digest}.sock"


class StatusServer:
    """Answers every connection with one JSON document, then closes it."""

    def __init__(self, path: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._path = path
        self._snapshot = snapshot
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> StatusServer:
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        try:
            self._server = await asyncio.start_unix_server(self._answer, path=str(self._path))
        except OSError as err:
            # A technician's convenience must never stop the supervision itself.
            log.error(
                "status socket %s unavailable (agent check will not answer): %s", self._path, err
            )
            return self
        try:
            self._path.chmod(SOCKET_MODE)
        except OSError as err:
            log.warning(
                "status socket %s: agent check will answer its owner only: %s", self._path, err
            )
        return self

    @property
    def serving(self) -> bool:
        """Whether the socket is bound and answering."""
        return self._server is not None and self._server.is_serving()

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    async def _answer(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(json.dumps(self._snapshot(), default=str).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()


def read_status(path: Path, *, timeout_s: float = 3.0) -> dict[str, Any]:
    """Ask a running agent for its status (raises OSError when none answers)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    result: dict[str, Any] = json.loads(data)
    return result
