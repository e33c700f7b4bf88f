"""python -m nasdip_jax.main --config=configs/rl_denoise.py --workdir=/tmp/rl_denoise --config.train_images=DIR

NAS-DIP's RL search for denoising (sigma 25): an LSTM controller (hidden 100, AutoGAN's REINFORCE:
Adam 3.5e-4, betas (0, 0.9), baseline decay 0.9, entropy 1e-3) samples 4 genotypes per step over
the cell fields and the 25 connection bits; each is fitted to the training images' 64-px centre
crops for 1200 steps with the denoising recipe (Adam 0.01, input noise 1/30, EMA 0.99) and its
final PSNR is the reward. 100 controller steps; t* from the best genotype's curve; the final run
restores the held-out --config.image. Paper-scale: meant for a GPU. Without --config.train_images
the bundled images other than house.png are the training set.
Try it small: --config.width=16 --config.num_steps=100 --config.num_controller_steps=5.
"""

from nasdip_jax.runs import rl_search


def get_config():
  config = rl_search.base_config()
  config.task = "denoise"
  config.channels = "rgb"
  config.sigma = 25.0
  config.num_steps = 1200
  config.lr = 0.01
  config.reg_noise_std = 1.0 / 30.0
  config.ema_decay = 0.99
  return config
