"""python -m nasdip_jax.main --config=configs/sr4x.py --workdir=/tmp/sr4x --config.image=IMG

Super-resolution x4, the DIP / NAS-DIP recipe: the LR image is Pillow's Lanczos resize of the
32-cropped HR image; the loss downsamples the output with DIP's Lanczos-2 operator; 2000 steps of
Adam at 0.01, input noise 0.03; PSNR on BT.601 Y with the 4/5-px border crop. RGB.
Without --config.image the bundled 64-px butterfly runs in about 4 minutes on a 2-core CPU.
"""

from nasdip_jax.runs import restore


def get_config():
  config = restore.base_config()
  config.task = "sr"
  config.channels = "rgb"
  config.factor = 4
  config.num_steps = 2000
  config.lr = 0.01
  config.reg_noise_std = 0.03
  return config
