"""python -m nasdip_jax.main --config=configs/single_pixel.py --workdir=/tmp/spi --config.image=IMG

Single-pixel camera imaging, the network-structure study's Table 3 setting: M = N / CF rows of the
orthonormal 2-D Walsh-Hadamard transform (the DC row and M - 1 rows drawn by the seed), CF 4,
noiseless, grayscale; the image's sides must be powers of two (crop with --config.crop_size). DIP
is fitted through the operator (loss ||A f(z) - b||^2) with the DIP recipe: skip network, 3000
steps of Adam at 0.01, input noise 1/30, EMA 0.99. corrupted.png is the back-projection A^T b.
Other matrices: --config.sensing=scrambled (pixels permuted first) or dense (+-1/sqrt(M), small
images); noise on the measurements: --config.noise_std=0.01.
Bundled 64-px synthetic logo: about 5 minutes on a 2-core CPU.
Sweep (CF 1 / 2 / 4 / 8; launch/sweep.py):
python launch/sweep.py --config=configs/single_pixel.py --workdir=/tmp/spi_sweep [--run]
"""

from nasdip_jax import recipes


def get_config():
  return recipes.restore_config("single_pixel")


def get_sweep():
  """The study's compression factors."""
  return [{"compression": cf} for cf in (1.0, 2.0, 4.0, 8.0)]
