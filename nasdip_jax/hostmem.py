"""Host memory: glibc malloc keeps freed memory for reuse instead of returning it to the OS.

XLA:CPU allocates each call's buffers afresh (tens of MB for a 64-px ISNAS candidate). Blocks
over glibc's mmap threshold (at most 32 MB) are mapped on every call and unmapped after it, so
every page of them faults on first touch, each call: ~10,000 page faults and ~30 ms of system
time per 64-px candidate on a 2-core CPU. Served from the heap and kept there, the same memory
is reused (ISNAS scoring ~1.25x faster, a 64-px DIP step ~1.2x; benchmarks/README.md).
"""

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
  """Tells glibc malloc to serve every block from its heaps (no per-block mmap) and to keep
  freed memory (no trimming below 2 GiB). Affects later allocations of the whole process.
  Returns whether it applied (False where the C library is not glibc)."""
  if not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL("libc.so.6")
    libc.gnu_get_libc_version  # pylint: disable=pointless-statement
  except (OSError, AttributeError):
    return False
  return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
