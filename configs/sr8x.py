"""python -m nasdip_jax.main --config=configs/sr8x.py --workdir=/tmp/sr8x --config.image=IMG

Super-resolution x8, the DIP x8 recipe: the LR image is Pillow's Lanczos resize of the 32-cropped
HR image; the loss downsamples the output with DIP's Lanczos-2 operator; 4000 steps of Adam at
0.01, input noise 0.05; PSNR on BT.601 Y with the 4/5-px border crop. RGB.
Without --config.image the bundled 64-px butterfly runs in about 4 minutes on a 2-core CPU.
"""

from nasdip_jax.runs import restore


def get_config():
  config = restore.base_config()
  config.task = "sr"
  config.channels = "rgb"
  config.factor = 8
  config.num_steps = 4000
  config.lr = 0.01
  config.reg_noise_std = 0.05
  return config
