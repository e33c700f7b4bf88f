"""python -m nasdip_jax.main --config=configs/study_single_pixel.py --workdir=/tmp/study_spi --config.data_dir=DATA

The network-structure study's Table 3: single-pixel imaging (rows of the 2-D Walsh-Hadamard
transform, the DC row kept, noiseless) of the logo (bundled) and Barbara (grayscale) at compression
factors 1, 2, 4, 8: TV-ADMM, plug-and-play ADMM with NLM and with BM3D (the optional `bm3d` package:
pip install -e ".[bm3d]"), the study's NS (plug-and-play ADMM with a warm-started DIP fit as the
proximal step) and DIP fitted through the operator. DATA: the folder holding the standard test sets
(Set14/). Reduced scale (128-px crops, width 32, 1500 DIP steps): about an hour on a 2-core CPU;
--config.scale=paper for the study's.
"""

from nasdip_jax import recipes
from nasdip_jax.runs import study


def get_config():
  config = study.base_config()
  config.table = "single_pixel"
  recipes.study_dip(config)
  return config
