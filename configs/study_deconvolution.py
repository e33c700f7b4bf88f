"""python -m nasdip_jax.main --config=configs/study_deconvolution.py --workdir=/tmp/study_deconv --config.data_dir=DATA

The network-structure study's Table 1: non-blind deconvolution of House and Parrots (Gaussian blur,
std 5 px, circular), noise std 1e-3, 1e-2, 1e-1: Wiener, TV-ADMM with lambda 5e-3 and 5e-2, the
study's "Wiener + NS" (DIP denoising of the Wiener estimate), and DIP fitted through the blur. DIP:
the reference recipe (skip network, Adam 0.01, input noise 1/30, EMA 0.99, 5-dB guard), reported at
the final step, the oracle best and the ES-WMV stop. DATA: the folder holding the standard test sets
(BM3D/, Kodak24/). Reduced scale (128-px crops, width 32, 1500 DIP steps): about an hour on a 2-core
CPU; the study's scale: --config.scale=paper (full images, 1e4 steps; a GPU).
"""

from nasdip_jax import recipes
from nasdip_jax.runs import study


def get_config():
  config = study.base_config()
  config.table = "deconvolution"
  recipes.study_dip(config)
  return config
