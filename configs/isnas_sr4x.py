"""python -m nasdip_jax.main --config=configs/isnas_sr4x.py --workdir=/tmp/isnas_sr4x

ISNAS-DIP super-resolution x4 (RGB) as isnasdip.sh: random outputs passed through the Lanczos-2
operator and scored against the LR image, the top 15 per metric trained 4500 steps at full size
("full-sized averaging"), selection by PSNR to the weighted average on the Y channel, the
selected genotype retrained. Paper-scale: meant for a GPU.
"""

from nasdip_jax.runs import isnas


def get_config():
  config = isnas.base_config()
  config.task = "sr"
  config.factor = 4
  config.num_steps = 4500
  config.resize_short_side = 0
  return config
