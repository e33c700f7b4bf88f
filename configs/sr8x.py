"""python -m nasdip_jax.main --config=configs/sr8x.py --workdir=/tmp/sr8x --config.image=IMG

Super-resolution x8, the DIP x8 recipe: configs/sr4x.py with factor 8, 4000 steps and input
noise 0.05.
"""

from configs import sr4x


def get_config():
  config = sr4x.get_config()
  config.factor = 8
  config.num_steps = 4000
  config.reg_noise_std = 0.05
  return config
