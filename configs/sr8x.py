"""python -m nasdip_jax.main --config=configs/sr8x.py --workdir=/tmp/sr8x --config.image=IMG

Super-resolution x8, the DIP x8 recipe: configs/sr4x.py with factor 8, 4000 steps and input
noise 0.05.
"""

from nasdip_jax import recipes


def get_config():
  return recipes.restore_config("sr", factor=8)
