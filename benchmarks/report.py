"""Shared helpers for benchmarks: flag checks, machine description, JSON results, README
tables."""

import json
import os
import platform
import re
import sys

from absl import app
from absl import flags
import jax

from nasdip_jax import hostmem
from nasdip_jax.errors import UserError

# As main.py does for every run: freed host memory kept for reuse (nasdip_jax/hostmem.py).
KEEP_FREED_MEMORY = hostmem.keep_freed_memory()
HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
README = os.path.join(HERE, "README.md")


def machine() -> dict:
  cpu, flags = platform.processor() or "", []
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      first = f.read().split("\n\n")[0].splitlines()  # the first processor's fields
    fields = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in first if ":" in l)}
    cpu, flags = fields.get("model name", cpu), fields.get("flags", "").split()
  except OSError:
    pass
  info = {"cpu": cpu, "cores": os.cpu_count(),
          "simd": "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other",
          "backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
          "jax": jax.__version__, "python": platform.python_version(),
          "keep_freed_memory": KEEP_FREED_MEMORY}
  try:
    import torch  # pylint: disable=import-outside-toplevel
    info["torch"] = torch.__version__
  except ImportError:
    pass
  return info


def write_json(path: str, obj) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def _fmt(v):
  if isinstance(v, float):
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
  return "" if v is None else str(v)


def update_readme_table(name: str, machine_info: dict, rows: list, cols: list) -> None:
  """Replaces the block between `<!-- name -->` markers in benchmarks/README.md with a table."""
  lines = [f"<!-- {name} -->",
           f"Machine: {machine_info['cpu']}, {machine_info['cores']} cores"
           + (f" ({machine_info['simd']})" if "simd" in machine_info else "") + ", "
           f"{machine_info['backend']} ({machine_info['device']}), jax {machine_info['jax']}"
           + (f", torch {machine_info['torch']}" if "torch" in machine_info else "") + ".",
           "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
  lines.append(f"<!-- /{name} -->")
  block = "\n".join(lines)
  text = open(README, encoding="utf-8").read() if os.path.exists(README) else "# Benchmarks\n"
  pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
  text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n"
  with open(README, "w", encoding="utf-8") as f:
    f.write(text)


# ---------------------------------------------------------------- flags
# Checked by absl before main runs: a bad value stops the script with one line and exit code 1.

def _int(v):
  try:
    return int(v)
  except ValueError:
    return None


def int_list(holder, lower: int = 1, multiple: int = 1) -> None:
  """A list flag's entries must be integers >= lower (and multiples of `multiple`)."""
  what = f"integers >= {lower}" + (f" that are multiples of {multiple}" if multiple > 1 else "")
  flags.register_validator(
      holder, lambda v: bool(v) and all(_int(x) is not None and _int(x) >= lower
                                        and _int(x) % multiple == 0 for x in v),
      f"--{holder.name} takes comma-separated {what}")


def choice_list(holder, allowed, empty: bool = False) -> None:
  """A list flag's entries must be among `allowed` (and there must be one, unless `empty`)."""
  flags.register_validator(holder, lambda v: v is None or ((empty or bool(v))
                                                           and set(v) <= set(allowed)),
                           f"--{holder.name} takes comma-separated entries of {list(allowed)}")


def same_length(a, b) -> None:
  """Two list flags paired entry by entry must have as many entries."""
  flags.register_multi_flags_validator(
      [a, b], lambda d: len(d[a.name]) == len(d[b.name]),
      f"--{a.name} and --{b.name} need as many entries (paired in order)")


def run(main) -> None:
  """app.run(main), a UserError (a missing image, ...) reported in one line with exit code 1."""
  def checked(argv):
    try:
      main(argv)
    except UserError as e:
      sys.exit(f"{os.path.basename(sys.argv[0])}: error: {e}")
  app.run(checked)
