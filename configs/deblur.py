"""python -m nasdip_jax.main --config=configs/deblur.py --workdir=/tmp/deblur --config.image=IMG

Non-blind deconvolution, the network-structure study's Table 1 setting: Gaussian blur of std 5 px
(31-px kernel), circular boundary, noise std 0.01 on the [0, 1] scale, grayscale. DIP is fitted
*through* the blur (loss ||C f(z) - b||^2) with the DIP recipe: skip network, 3000 steps of Adam at
0.01, input noise 1/30, EMA 0.99 of outputs, divergence guard at 5 dB.
The study's "Wiener + NS" (DIP denoising of the Wiener estimate): --config.wiener_dip=true.
Noise level: --config.noise_std=0.1; the boundary: --config.boundary=reflect; your own kernel
(e.g. motion blur; normalised): --config.kernel=kernel.png or kernel.npy.
Bundled 64-px house: about 5 minutes on a 2-core CPU.
Sweep (noise 1e-3 / 1e-2 / 1e-1, through the blur and Wiener + DIP; launch/sweep.py):
python launch/sweep.py --config=configs/deblur.py --workdir=/tmp/deblur_sweep [--run]
"""

from nasdip_jax import recipes


def get_config():
  return recipes.restore_config("deblur")


def get_sweep():
  """The study's three noise levels, DIP through the blur and Wiener + DIP."""
  return [{"noise_std": s, "wiener_dip": w} for s in (1e-3, 1e-2, 1e-1) for w in (False, True)]
