"""python -m nasdip_jax.main --config=configs/sr4x.py --workdir=/tmp/sr4x --config.image=IMG

Super-resolution x4, the DIP / NAS-DIP recipe: the LR image is Pillow's Lanczos resize of the
32-cropped HR image; the loss downsamples the output with DIP's Lanczos-2 operator; 2000 steps of
Adam at 0.01, input noise 0.03; PSNR on BT.601 Y with the 4/5-px border crop. RGB.
Without --config.image the bundled 64-px butterfly runs in about 4 minutes on a 2-core CPU.
"""

from nasdip_jax import recipes


def get_config():
  return recipes.restore_config("sr", factor=4)
