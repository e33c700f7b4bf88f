"""python -m nasdip_jax.main --config=configs/inpaint.py --workdir=/tmp/inpaint --config.image=IMG

NAS-DIP's "inpainting": restore a grayscale image from 50% i.i.d. kept pixels (the DIP restoration
recipe): 11000 steps of Adam at 0.001, input noise 0.03, no EMA, masked MSE over all pixels.
Give --config.mask=MASK.png (nonzero = observed) for a fixed mask instead.
"""

from nasdip_jax import recipes


def get_config():
  return recipes.restore_config("inpaint")
