"""Is the edge clock synchronised? A Pi has no RTC: until NTP syncs, timestamps are flagged."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)

# A test configuration may say what the probe answers (the test machine's kernel may report
# either); a production unit never sets it.
SYNCED_ENV_VAR = "SHELTERWATCH_TEST_CLOCK_SYNCED"
# <sys/timex.h>: adjtimex returns the clock state; TIME_ERROR means "not synchronised".
_TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # Only the size matters to the kernel call: struct timex is 208 bytes on 64-bit Linux;
    # a generous buffer of zeros (modes=0 means read-only) is safe on 32-bit ARM too.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 252)]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    # Looked up once: find_library runs ldconfig, and the state is read at every record.
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError as err:
        log.warning("cannot load the C library to read the kernel clock state: %s", err)
        return None


def kernel_clock_synced() -> bool:
    """True when the kernel reports the clock as synchronised (NTP/chrony/timesyncd)."""
    libc = _libc()
    if libc is None:
        return False
    try:
        buf = _Timex()
        state = int(libc.adjtimex(ctypes.byref(buf)))
    except (OSError, AttributeError) as err:
        log.warning("cannot read the kernel clock state: %s", err)
        return False
    return state not in (-1, _TIME_ERROR)


def synced_probe_from_environment() -> Callable[[], bool]:
    """The kernel's word, or what a test configuration says (``SYNCED_ENV_VAR``: 1 or 0)."""
    forced = os.environ.get(SYNCED_ENV_VAR)
    if forced is None:
        return kernel_clock_synced
    value = forced.strip() == "1"
    log.warning(
        "TEST CLOCK STATE in use (%s=%s): the clock reads as synced=%s",
        SYNCED_ENV_VAR,
        forced,
        value,
    )
    return lambda: value
