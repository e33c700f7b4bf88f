"""hostmem.keep_freed_memory: large blocks come back from the heap without page faults."""

import subprocess
import sys

import pytest

from conftest import REPO

_PROGRAM = """
import ctypes, resource
from nasdip_jax import hostmem
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def faults(size=64 * 2**20):  # page faults of touching a fresh 64 MiB block, freed after
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  block = libc.malloc(size)
  ctypes.memset(block, 1, size)
  libc.free(block)
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
default = faults()
applied = hostmem.keep_freed_memory()
faults()  # the heap grows once
print(applied, default, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_blocks_are_reused_instead_of_mapped_again():
  out = subprocess.run([sys.executable, "-c", _PROGRAM], cwd=REPO, capture_output=True,
                       text=True, check=True).stdout.split()
  applied, default, kept = out[0] == "True", int(out[1]), int(out[2])
  assert applied
  assert kept < min(50, default), (default, kept)  # default: every page again (16384 at 4 KiB)
