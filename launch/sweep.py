"""Expands a config's sweep into command lines, and prints or runs them one after another.

    python launch/sweep.py --config=configs/denoise.py --workdir=/tmp/sweep [--run]

A config file defines `get_sweep()` returning a list of override dicts, e.g.
`[{"seed": s, "sigma": 50.0} for s in range(3)]` (nested fields dotted: `"net.channels_down"`);
each entry runs in `<workdir>/<index>`. Without `get_sweep()` the sweep is the config alone.
Every entry is parsed as `nasdip_jax.main` will parse it before anything runs, so a misspelt
field or a bad value stops the sweep at once. Prints the commands (for xargs, a cluster or a
notebook) unless --run is given; with --run, a failed run stops the sweep.
"""

import importlib.util
import shlex
import subprocess
import sys

from absl import app
from absl import flags

from nasdip_jax import overrides as config_overrides

_CONFIG = flags.DEFINE_string("config", None, "Config file with get_config() and get_sweep().")
_WORKDIR = flags.DEFINE_string("workdir", None, "Parent directory of the sweep's runs.")
_RUN = flags.DEFINE_bool("run", False, "Run the commands here, one after another.")
flags.mark_flags_as_required(["config", "workdir"])


class SweepError(ValueError):
  """A sweep entry that nasdip_jax.main would refuse."""


def sweep_commands(config_path: str, workdir: str) -> list[list[str]]:
  """The command line of every entry of the config's get_sweep(); SweepError if one is bad."""
  spec = importlib.util.spec_from_file_location("sweep_config", config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  sweep = module.get_sweep() if hasattr(module, "get_sweep") else [{}]
  commands = []
  for i, overrides in enumerate(sweep):
    args = [f"--config.{k}={v}" for k, v in overrides.items()]
    try:
      config_overrides.parse(config_path, args)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
      message = (config_overrides.unknown_field(config_overrides.parse(config_path), args)
                 or " ".join(str(e).split()))
      raise SweepError(f"get_sweep()[{i}] = {overrides}: {message}") from None
    commands.append([sys.executable, "-m", "nasdip_jax.main", f"--config={config_path}",
                     f"--workdir={workdir}/{i}", *args])
  return commands


def main(argv):
  del argv
  try:
    commands = sweep_commands(_CONFIG.value, _WORKDIR.value)
  except SweepError as e:
    sys.exit(f"sweep: error: {e}")
  for i, cmd in enumerate(commands):
    print(shlex.join(cmd), flush=True)
    if _RUN.value and subprocess.run(cmd, check=False).returncode:
      sys.exit(f"sweep: error: run {i} failed; the sweep stops ({len(commands) - i - 1} not run)")


if __name__ == "__main__":
  app.run(main)
