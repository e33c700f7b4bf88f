"""Command line: `python -m nasdip_jax.main --config=configs/sr4x.py --workdir=/tmp/sr4x`.

Any config field can be overridden as `--config.field=value`; `config.run` picks the run.
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from nasdip_jax import hostmem
from nasdip_jax import overrides
from nasdip_jax import runs
from nasdip_jax.errors import UserError
from nasdip_jax.report import files

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "A config file from configs/ (a Python file with get_config()).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's results.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Multi-host: call jax.distributed.initialize() first (cluster settings "
    "auto-detected on Cloud TPU, SLURM, MPI, or given by the three flags below).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 (with --distributed).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Hosts in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This host's index, 0..num_processes-1.")
_KEEP_FREED_MEMORY = flags.DEFINE_bool(
    "keep_freed_memory", True, "glibc malloc keeps freed memory for reuse (XLA:CPU's per-call "
    "buffers then do not page-fault; see nasdip_jax/hostmem.py).")
flags.mark_flags_as_required(["config", "workdir"])


def _fail(error) -> None:
  """Exits with status 1 and one line naming the problem."""
  text = str(error).replace("\\n", " ").replace("\\'", "'")
  text = " ".join(text.split())
  if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
    text = text[1:-1]
  sys.exit(f"nasdip_jax: error: {text}")


def parse_flags(argv):
  """absl's flag parsing, with bad config fields and values reported as one line."""
  try:
    return flags.FLAGS(argv)
  except OSError as e:  # the config file could not be loaded (with overrides to apply)
    _fail_to_load(e)
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    _fail(_unknown_field(argv) or e)


def _fail_to_load(error: OSError) -> None:
  _fail("cannot load the config file: " + str(error).strip().splitlines()[-1].strip())


def _unknown_field(argv) -> str | None:
  """The override of a field the config lacks (ml_collections' own error does not name it):
  the config file (`--config=F` or `--config F`) parsed alone, the overrides' paths looked up
  in it."""
  config_files = [b if a == "--config" else a[len("--config="):]
                  for a, b in zip(argv[1:], argv[2:] + [""])
                  if a.startswith("--config=") or a == "--config"]
  if not config_files:
    return None
  try:
    return overrides.unknown_field(overrides.parse(config_files[-1]), argv[1:])
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError):
    return None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    config = _CONFIG.value
    run = runs.get_run(config.run)
    files.check_workdir(_WORKDIR.value)
  except OSError as e:  # the config file could not be loaded
    _fail_to_load(e)
  except UserError as e:
    _fail(e)
  if _KEEP_FREED_MEMORY.value:
    hostmem.keep_freed_memory()
  if not flags.FLAGS["verbosity"].present:  # JAX's and Orbax's INFO lines, unless asked for
    logging.set_verbosity(logging.WARNING)
  import jax  # pylint: disable=import-outside-toplevel
  if config.get("cpu_devices"):  # before JAX starts its backends
    jax.config.update("jax_num_cpu_devices", config.cpu_devices)
  if _DISTRIBUTED.value:
    try:
      jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    except ValueError as e:  # no cluster detected, or inconsistent flags
      _fail(f"--distributed: {e} (outside Cloud TPU, SLURM and MPI, give every host "
            "--coordinator_address, --num_processes and --process_id: launch/multihost.md)")
  logging.info("process %d of %d; local devices: %s", jax.process_index(), jax.process_count(),
               jax.local_devices())
  try:
    summary = run(config, _WORKDIR.value)
  except UserError as e:
    _fail(e)
  keys = [k for k in ("task", "image", "num_seeds", "psnr_final", "psnr_final_std", "ssim_final",
                      "psnr_best", "psnr_best_std", "best_step", "steps_per_sec")
          if k in summary]
  if jax.process_index() != 0:
    return
  print(" ".join(f"{k}={summary[k]:.3f}" if isinstance(summary[k], float) else f"{k}={summary[k]}"
                 for k in keys))
  if "restored" in summary:
    print(f"restored image: {summary['restored']}")
  if "results" in summary:
    print(f"table of every image: {summary['results']}")
  if "figure" in summary:
    print(f"figure: {summary['figure']}")
  print(f"results in {_WORKDIR.value}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
