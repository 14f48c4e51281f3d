"""free_port never hands out a port it handed out recently (a stale client may still dial it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators import broker


class _Kernel:
    """Stands in for the kernel's choice of an ephemeral port: the ports given, in turn."""

    def __init__(self, ports: list[int]) -> None:
        self._ports: Iterator[int] = iter(ports)
        self._port = 0

    def __call__(self, *_a: Any) -> _Kernel:
        self._port = next(self._ports)
        return self

    def __enter__(self) -> _Kernel:
        return self

    def __exit__(self, *_a: object) -> None:
        return None

    def bind(self, _address: object) -> None:
        return None

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self._port)


def test_a_port_offered_again_by_the_kernel_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker, "_PORT_REGISTRY", tmp_path / "ports.txt")
    monkeypatch.setattr(broker.socket, "socket", _Kernel([40001, 40001, 40001, 40002]))
    assert broker.free_port() == 40001
    assert broker.free_port() == 40002  # 40001 twice more from the kernel: refused


def test_the_quarantine_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "ports.txt"
    registry.write_text("40001 0\n")  # handed out at the epoch: long ago
    monkeypatch.setattr(broker, "_PORT_REGISTRY", registry)
    monkeypatch.setattr(broker.socket, "socket", _Kernel([40001]))
    assert broker.free_port() == 40001
