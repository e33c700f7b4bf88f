"""Page faults of touching a fresh 64 MiB malloc block, before and after
`hostmem.keep_freed_memory()` (glibc: freed blocks then come back from the heap, not mmap).

    python benchmarks/hostmem_faults.py

Writes benchmarks/results/hostmem_faults.json and its table in benchmarks/README.md. Measured in
a fresh interpreter: the setting changes the process for good.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position

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


def main(argv):
  del argv
  out = subprocess.run([sys.executable, "-c", _PROGRAM], cwd=os.path.dirname(report.HERE),
                       capture_output=True, text=True, check=True).stdout.split()
  row = {"applied": out[0] == "True", "faults_default": int(out[1]),
         "faults_kept": int(out[2])}
  print(row)
  result = {"machine": report.machine(), "rows": [row]}
  report.write_json(os.path.join(report.RESULTS, "hostmem_faults.json"), result)
  report.update_readme_table("hostmem_faults", result["machine"], [row],
                             ["applied", "faults_default", "faults_kept"])


if __name__ == "__main__":
  report.run(main)
