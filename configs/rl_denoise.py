"""python -m nasdip_jax.main --config=configs/rl_denoise.py --workdir=/tmp/rl_denoise --config.train_images=DIR

NAS-DIP's RL search for denoising (sigma 25): an LSTM controller (hidden 100, AutoGAN's REINFORCE:
Adam 3.5e-4, betas (0, 0.9), baseline decay 0.9, entropy 1e-3) samples 4 genotypes per step over
the cell fields and the 25 connection bits; each is fitted to the training images' 64-px centre
crops for 1200 steps with the denoising recipe of configs/denoise.py (Adam 0.01, input noise
1/30, EMA 0.99, divergence guard 5 dB) and its final PSNR is the reward. 100 controller steps;
t* from the best genotype's curve; the final run restores the held-out --config.image with the
same recipe. Paper-scale: meant for a GPU. Without --config.train_images the bundled images
other than house.png are the training set.
Try it small: --config.width=16 --config.num_steps=100 --config.num_controller_steps=5.
"""

from configs import denoise
from nasdip_jax.runs import common
from nasdip_jax.runs import rl_search


def get_config():
  config = rl_search.base_config()
  recipe = denoise.get_config()  # the denoising recipe, divergence guard included
  for name in ("task", "channels", "sigma") + common.FIT_FIELDS:
    config[name] = recipe[name]
  config.num_steps = 1200
  return config
