"""python -m nasdip_jax.main --config=configs/inpaint.py --workdir=/tmp/inpaint --config.image=IMG

NAS-DIP's "inpainting": restore a grayscale image from 50% i.i.d. kept pixels (the DIP restoration
recipe): 11000 steps of Adam at 0.001, input noise 0.03, no EMA, masked MSE over all pixels.
Give --config.mask=MASK.png (nonzero = observed) for a fixed mask instead.
"""

from nasdip_jax.runs import restore


def get_config():
  config = restore.base_config()
  config.task = "inpaint"
  config.channels = "gray"
  config.keep_fraction = 0.5
  config.num_steps = 11000
  config.lr = 0.001
  config.reg_noise_std = 0.03
  return config
