"""python -m nasdip_jax.main --config=configs/rl_sr4x.py --workdir=/tmp/rl_sr4x --config.train_images=DIR

NAS-DIP's RL search for x4 super-resolution: the controller and REINFORCE of
configs/rl_denoise.py; each genotype is fitted to the 64-px HR crops (16-px LR inputs) for 1000
steps with the SR recipe (Adam 0.01, input noise 0.03, Lanczos-2 operator) and its PSNR (Y channel,
border crop) is the reward. Paper-scale: meant for a GPU.
"""

from nasdip_jax.runs import rl_search


def get_config():
  config = rl_search.base_config()
  config.task = "sr"
  config.channels = "rgb"
  config.factor = 4
  config.num_steps = 1000
  config.lr = 0.01
  config.reg_noise_std = 0.03
  config.ema_decay = 0.0
  return config
