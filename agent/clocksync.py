"""Is the edge clock synchronised? A Pi has no RTC: until NTP syncs, timestamps are flagged."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# <sys/timex.h>: adjtimex returns the clock state; TIME_ERROR means "not synchronised".
_TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # Only the size matters to the kernel call: struct timex is 208 bytes on 64-bit Linux;
    # a generous buffer of zeros (modes=0 means read-only) is safe on 32-bit ARM too.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 252)]


def kernel_clock_synced() -> bool:
    """True when the kernel reports the clock as synchronised (NTP/chrony/timesyncd)."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        buf = _Timex()
        state = int(libc.adjtimex(ctypes.byref(buf)))
    except (OSError, AttributeError) as err:
        log.warning("cannot read the kernel clock state: %s", err)
        return False
    return state not in (-1, _TIME_ERROR)
