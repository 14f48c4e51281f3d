"""The agent's SNMP engine: pysnmp's, with MIB modules run from their bytecode (memory)."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from agent.sensors.snmp.engine import new_engine

# isort: split
# pysnmp after the agent's engine module, as in the agent: its USM is imported there (usm.py).
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine


def _configured(engine: SnmpEngine) -> dict[str, list[str]]:
    config.add_v1_system(engine, "trap-community-0", "public")
    config.add_v3_user(
        engine,
        "trapper",
        authProtocol=config.USM_AUTH_HMAC96_SHA,
        authKey="trap-auth-key-1",
        privProtocol=config.USM_PRIV_CFB128_AES,
        privKey="trap-priv-key-1",
    )
    symbols = engine.get_mib_builder().mibSymbols
    return {module: sorted(names) for module, names in symbols.items()}


def test_same_mib_modules_and_symbols_as_pysnmp() -> None:
    assert _configured(new_engine()) == _configured(SnmpEngine())


def test_no_mib_module_compiled_from_source(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    real = builtins.compile

    def counting(source: Any, filename: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(filename))
        return real(source, filename, *args, **kwargs)

    monkeypatch.setattr(builtins, "compile", counting)
    _configured(new_engine())
    assert [f for f in compiled if "mibs" in f] == []
