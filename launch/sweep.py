"""Expands a config's sweep into command lines, and prints or runs them one after another.

    python launch/sweep.py --config=configs/denoise.py --workdir=/tmp/sweep [--run]

A config file defines `get_sweep()` returning a list of override dicts, e.g.
`[{"seed": s, "sigma": 50.0} for s in range(3)]`; each entry runs in `<workdir>/<index>`.
Without `get_sweep()` the sweep is the config alone. Prints the commands (for xargs, a cluster
or a notebook) unless --run is given.
"""

import importlib.util
import shlex
import subprocess
import sys

from absl import app
from absl import flags

_CONFIG = flags.DEFINE_string("config", None, "Config file with get_config() and get_sweep().")
_WORKDIR = flags.DEFINE_string("workdir", None, "Parent directory of the sweep's runs.")
_RUN = flags.DEFINE_bool("run", False, "Run the commands here, one after another.")
flags.mark_flags_as_required(["config", "workdir"])


def sweep_commands(config_path: str, workdir: str) -> list[list[str]]:
  spec = importlib.util.spec_from_file_location("sweep_config", config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  sweep = module.get_sweep() if hasattr(module, "get_sweep") else [{}]
  commands = []
  for i, overrides in enumerate(sweep):
    cmd = [sys.executable, "-m", "nasdip_jax.main", f"--config={config_path}",
           f"--workdir={workdir}/{i}"]
    cmd += [f"--config.{k}={v}" for k, v in overrides.items()]
    commands.append(cmd)
  return commands


def main(argv):
  del argv
  for cmd in sweep_commands(_CONFIG.value, _WORKDIR.value):
    print(shlex.join(cmd), flush=True)
    if _RUN.value:
      subprocess.run(cmd, check=True)


if __name__ == "__main__":
  app.run(main)
