"""Process-wide settings that training depends on for its speed.

glibc's ``malloc`` serves large blocks (every (N, D) node matrix of a graph
model) with fresh ``mmap`` pages and hands them back to the system on ``free``.
A training step allocates and frees hundreds of such blocks, so every step
page-faults its whole working set in again. Keeping freed memory inside the
process removes those faults once the heap has grown to what a step needs.
What it costs is fragmentation: the heap keeps blocks of many sizes, so the
peak grows beyond what one step needs. On TikTok that is under 90 MiB; at
3 x 10^6 interactions an epoch took half the time and 1.8 times the memory
(docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

_kept = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed blocks instead of unmapping them.

    Turns off ``mmap`` for large allocations and never trims the heap below
    2 GiB of free space. Idempotent, and process-wide: it also applies to
    everything else the process allocates afterwards.

    Returns:
        True where it took effect (Linux with glibc), False elsewhere.
    """
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.debug("no glibc mallopt here; memory settings left as they are")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _kept = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
    return _kept
