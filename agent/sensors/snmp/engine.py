"""pysnmp's ``SnmpEngine`` with its MIB modules loaded from their compiled bytecode.

An engine loads its MIB modules (13 at construction, more as users and communities are
added) through its MIB builder, not through ``import``. pysnmp 7's directory source never uses
the ``__pycache__`` bytecode pip installed: it looks for ``X.pyc`` beside ``X.py``, reads the
header as if it were Python 2's, and, when Python runs without ``-O``, executes the module with
``runpy.run_path`` on the ``.py`` file anyway. So every engine compiled every module from
source twice, about 3.3 MiB of compiler memory that Python keeps once it is freed (``SnmpEngine()``
went from 4.7 to 1.1 MiB of RSS; docs/benchmarks.md, agent footprint). The engine built here
is the same engine with the same modules; only where their code comes from differs.

Its USM runs AES on the ``libcrypto`` hashlib uses, not on cryptography (``usm``).
"""

from __future__ import annotations

import importlib.util
import marshal
import os
from typing import Any

from agent.sensors.snmp import usm  # noqa: F401  (first: pysnmp's USM without cryptography)

# isort: split
from pysnmp.entity.engine import SnmpEngine
from pysnmp.proto.rfc3412 import MsgAndPduDispatcher
from pysnmp.smi.builder import DirMibSource, MibBuilder
from pysnmp.smi.instrum import MibInstrumController

# The suffix ``_CompiledMibSource.read`` reports for a module read from its bytecode.
_BYTECODE = ".pyc"


def new_engine() -> SnmpEngine:
    """A new ``SnmpEngine`` whose MIB modules come from ``__pycache__`` when it is current."""
    builder = MibBuilder()
    builder.set_mib_sources(
        *(
            _CompiledMibSource(source.full_path()) if type(source) is DirMibSource else source
            for source in builder.get_mib_sources()
        )
    )
    return SnmpEngine(msgAndPduDsp=MsgAndPduDispatcher(MibInstrumController(builder)))


class _CompiledMibSource(DirMibSource):  # type: ignore[misc]
    """A MIB directory read as ``import`` would: the cached bytecode of ``X.py`` if its header
    matches the source (timestamp and size), else the source, as pysnmp does."""

    def read(self, f: str) -> tuple[Any, str]:
        """``(code, suffix)`` of MIB module ``f``; ``OSError`` when there is none."""
        code = _current_bytecode(os.path.join(self._srcName, f + ".py"))
        if code is not None:
            return code, _BYTECODE
        return super().read(f)  # type: ignore[no-any-return]

    def full_path(self, f: str = "", sfx: str = "") -> str:
        """Where module ``f`` was read from; the builder runs that file (``runpy``, which takes
        bytecode as it is)."""
        if sfx == _BYTECODE:
            return importlib.util.cache_from_source(os.path.join(self._srcName, f + ".py"))
        return super().full_path(f, sfx)  # type: ignore[no-any-return]


def _current_bytecode(source: str) -> Any | None:
    """The code object cached for ``source``, or None if missing or stale (PEP 552 header:
    magic, flags 0 for timestamp-based, source mtime and size)."""
    try:
        cached = importlib.util.cache_from_source(source)
        stat = os.stat(source)
        with open(cached, "rb") as file:
            header = file.read(16)
            if (
                header[:4] != importlib.util.MAGIC_NUMBER
                or int.from_bytes(header[4:8], "little") != 0
                or int.from_bytes(header[8:12], "little") != int(stat.st_mtime) & 0xFFFFFFFF
                or int.from_bytes(header[12:16], "little") != stat.st_size & 0xFFFFFFFF
            ):
                return None
            return marshal.loads(file.read())
    except (OSError, NotImplementedError, ValueError, EOFError, TypeError):
        return None
