"""python -m nasdip_jax.main --config=configs/sr2x.py --workdir=/tmp/sr2x --config.image=IMG

Super-resolution x2 with the x4 recipe (DIP publishes no x2 recipe): configs/sr4x.py, factor 2.
"""

from nasdip_jax import recipes


def get_config():
  return recipes.restore_config("sr", factor=2)
