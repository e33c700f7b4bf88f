"""python -m nasdip_jax.main --config=configs/isnas_inpaint.py --workdir=/tmp/isnas_inpaint

ISNAS-DIP inpainting (50% of pixels kept, grayscale) as isnasdip.sh: 5000 candidates scored
against the masked image, the top 15 per metric trained 9500 steps resized to short side 64
(the mask resized too, so it is no longer binary, as in the reference), averaging selection,
the selected genotype retrained at full size. Paper-scale: meant for a GPU.
"""

from nasdip_jax.runs import isnas


def get_config():
  config = isnas.base_config()
  config.task = "inpaint"
  config.channels = "gray"
  config.keep_fraction = 0.5
  config.num_steps = 9500
  config.resize_short_side = 64
  return config
