"""python -m nasdip_jax.main --config=configs/test.py --workdir=/tmp/dip_test

A tiny end-to-end run for smoke tests: 8-channel, 3-level skip network, 20 denoising steps on the
bundled image. Seconds on a CPU. Pass e.g. --config.task=sr to smoke-test another task.
"""

from nasdip_jax.runs import restore


def get_config():
  config = restore.base_config()
  config.task = "denoise"
  config.num_steps = 20
  config.steps_per_call = 10
  config.log_every = 5
  config.input_depth = 8
  config.ema_decay = 0.99
  config.backtrack_db = 5.0
  config.net.channels_down = (8, 8, 8)
  config.net.channels_up = (8, 8, 8)
  config.net.channels_skip = (4, 4, 4)
  return config
