"""Command line: `python -m nasdip_jax.main --config=configs/sr4x.py --workdir=/tmp/sr4x`.

Any config field can be overridden as `--config.field=value`; `config.run` picks the run.
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from nasdip_jax import runs
from nasdip_jax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "A config file from configs/ (a Python file with get_config()).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's results.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import jax  # pylint: disable=import-outside-toplevel
  logging.info("JAX devices: %s", jax.local_devices())
  config = _CONFIG.value
  try:
    summary = runs.get_run(config.run)(config, _WORKDIR.value)
  except UserError as e:
    sys.exit(f"nasdip_jax: error: {e}")
  keys = [k for k in ("task", "image", "psnr_final", "psnr_best", "best_step", "steps_per_sec")
          if k in summary]
  print(" ".join(f"{k}={summary[k]:.3f}" if isinstance(summary[k], float) else f"{k}={summary[k]}"
                 for k in keys))


if __name__ == "__main__":
  app.run(main)
