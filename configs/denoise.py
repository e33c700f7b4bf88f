"""python -m nasdip_jax.main --config=configs/denoise.py --workdir=/tmp/denoise --config.image=IMG

Gaussian denoising, sigma 25, the DIP / NAS-DIP recipe: 3000 steps of Adam at 0.01, input noise
1/30, EMA 0.99 of outputs (PSNR measured on the EMA), divergence guard at 5 dB, RGB.
Bundled 64-px default image: about 5 minutes on a 2-core CPU.
Sweep (sigma 15 / 25 / 50, seeds 0-2; launch/sweep.py): python launch/sweep.py
--config=configs/denoise.py --workdir=/tmp/denoise_sweep [--run] [--config.image=IMG ...]
"""

from nasdip_jax import recipes


def get_config():
  return recipes.restore_config("denoise")


def get_sweep():
  """The denoising table's noise levels, three seeds each (launch/sweep.py)."""
  return [{"sigma": sigma, "seed": seed} for sigma in (15.0, 25.0, 50.0) for seed in range(3)]
