"""Expands a config's sweep into command lines, and prints or runs them one after another.

    python launch/sweep.py --config=configs/denoise.py --workdir=/tmp/sweep [--run] \
        [--config.FIELD=VALUE ...]

A config file defines `get_sweep()` returning a list of override dicts, e.g.
`[{"seed": s, "sigma": 50.0} for s in range(3)]` (nested fields dotted: `"net.channels_down"`);
each entry runs in `<workdir>/<index>`. Without `get_sweep()` the sweep is the config alone.
`--config.FIELD=VALUE` flags apply to every entry (an entry's own value wins). Before anything
runs, every entry is parsed as `nasdip_jax.main` will parse it and checked as its run will
check it (`runs.get_check`: fields, images, masks, metric sizes), so a misspelt field, a bad
value or a missing image stops the sweep at once. Prints the commands (for xargs, a cluster or
a notebook) unless --run is given; with --run, a failed run stops the sweep.
"""

import importlib.util
import shlex
import subprocess
import sys

from absl import app
from absl import flags

from nasdip_jax import overrides as config_overrides
from nasdip_jax import runs
from nasdip_jax.errors import UserError

_CONFIG = flags.DEFINE_string("config", None, "Config file with get_config() and get_sweep().")
_WORKDIR = flags.DEFINE_string("workdir", None, "Parent directory of the sweep's runs.")
_RUN = flags.DEFINE_bool("run", False, "Run the commands here, one after another.")
flags.mark_flags_as_required(["config", "workdir"])
_COMMON = []  # the --config.FIELD=VALUE flags given to the launcher: for every entry


class SweepError(ValueError):
  """A sweep entry that nasdip_jax.main would refuse."""


def _args(overrides: dict) -> list:
  return [f"--config.{k}={v}" for k, v in overrides.items()]


def sweep_commands(config_path: str, workdir: str, common=()) -> list[list[str]]:
  """The command line of every entry of the config's get_sweep() (`common` overrides first,
  the entry's after, so the entry's win); SweepError if main or the run would refuse one."""
  spec = importlib.util.spec_from_file_location("sweep_config", config_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  sweep = module.get_sweep() if hasattr(module, "get_sweep") else [{}]
  commands = []
  for i, overrides in enumerate(sweep):
    own = _args(overrides)
    mine = {a.split("=", 1)[0] for a in own}
    args = [a for a in common if a.split("=", 1)[0] not in mine] + own
    try:
      config = config_overrides.parse(config_path, args)
      runs.get_check(config.run)(config)
    except UserError as e:
      raise SweepError(f"get_sweep()[{i}] = {overrides}: {e}") from None
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
      message = (config_overrides.unknown_field(config_overrides.parse(config_path), args)
                 or " ".join(str(e).split()))
      raise SweepError(f"get_sweep()[{i}] = {overrides}: {message}") from None
    commands.append([sys.executable, "-m", "nasdip_jax.main", f"--config={config_path}",
                     f"--workdir={workdir}/{i}", *args])
  return commands


def parse_flags(argv):
  """absl's flags, with the --config.FIELD=VALUE arguments kept apart for every entry."""
  _COMMON.extend(a for a in argv[1:] if a.startswith("--config."))
  return flags.FLAGS([a for a in argv if not a.startswith("--config.")])


def main(argv):
  del argv
  try:
    commands = sweep_commands(_CONFIG.value, _WORKDIR.value, _COMMON)
  except SweepError as e:
    sys.exit(f"sweep: error: {' '.join(str(e).split())}")
  for i, cmd in enumerate(commands):
    print(shlex.join(cmd), flush=True)
    if _RUN.value and subprocess.run(cmd, check=False).returncode:
      sys.exit(f"sweep: error: run {i} failed; the sweep stops ({len(commands) - i - 1} not run)")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
