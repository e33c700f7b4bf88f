"""python -m nasdip_jax.main --config=configs/rl_inpaint.py --workdir=/tmp/rl_inpaint --config.train_images=DIR

NAS-DIP's RL search for inpainting (50% of pixels kept, grayscale): the controller and REINFORCE
of configs/rl_denoise.py; each genotype is fitted to the 64-px crops for 1500 steps at Adam 0.01
(the reference's 0.001 needs 11000 steps, too slow to rank hundreds of candidates), input noise
0.03, no EMA; final PSNR is the reward. Paper-scale: meant for a GPU.
"""

from nasdip_jax.runs import rl_search


def get_config():
  config = rl_search.base_config()
  config.task = "inpaint"
  config.channels = "gray"
  config.keep_fraction = 0.5
  config.num_steps = 1500
  config.lr = 0.01
  config.reg_noise_std = 0.03
  config.ema_decay = 0.0
  return config
