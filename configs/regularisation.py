"""python -m nasdip_jax.main --config=configs/regularisation.py --workdir=/tmp/reg --config.image=../shared/data/BM3D/Lena512.png --config.channels=gray

The network-structure study's regularisation experiment (its Fig. 2): the autoencoder (DIP's skip
network without skip branches, widths 128) fitted with Adam at 1e-4 for 1e4 steps to clean Lena,
Lena + N(0, 0.1^2) (clipped) and U[0, 1) noise, with no regulariser, dropout (keep 0.9), L1
(lambda 1e-6) or L2 (lambda 1e-4) on the convolution weights (penalties added to the mean MSE);
z fixed (no input noise), no EMA. Writes regularisation.png (loss and PSNR curves), results.csv,
summary.json, curves.npz and every fit's image. The study leaves p_keep, lambda, the noise level
and the noise target open: these are ../shared/reference's choices.
Try it small: --config.crop_size=64 --config.num_steps=500 (bundled house: minutes on a CPU).
"""

from nasdip_jax.runs import regularisation


def get_config():
  config = regularisation.base_config()
  config.model = "autoencoder"
  config.lr = 1e-4
  config.reg_noise_std = 0.0
  config.dropout_keep = 0.9
  config.l1 = 1e-6
  config.l2 = 1e-4
  config.num_steps = 10000
  return config
