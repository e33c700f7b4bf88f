"""python -m nasdip_jax.main --config=configs/study_denoising.py --workdir=/tmp/study_denoise --config.data_dir=DATA

The network-structure study's Table 2: denoising Cameraman, Hill (grayscale), F-16 and Baboon
(colour) at noise std 5e-3, 1e-2, 5e-2, 1e-1, 5e-1 (clipped to [0, 1]): NLM (scikit-image, h = 0.8
sigma), BM3D / CBM3D (the optional `bm3d` package: pip install -e ".[bm3d]") and DIP (the study's
NS: the reference recipe, reported at the final step, the oracle best and the discrepancy stop,
its noise level estimated from the observation). DATA:
the folder holding the standard test sets (BM3D/, Set9/). Reduced scale (128-px crops, width 32,
1500 DIP steps): about an hour on a 2-core CPU; --config.scale=paper for the study's.
"""

from nasdip_jax import recipes
from nasdip_jax.runs import study


def get_config():
  config = study.base_config()
  config.table = "denoising"
  recipes.study_dip(config)
  return config
