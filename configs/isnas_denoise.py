"""python -m nasdip_jax.main --config=configs/isnas_denoise.py --workdir=/tmp/isnas_denoise

ISNAS-DIP denoising (sigma 25) as the reference's isnasdip.sh runs it: the 5000-candidate list
scored training-free (unbuildable ones skipped), the top 15 of `psd db strip mse`,
`psd strip hist emd` and the random baseline each trained 1200 steps resized to short side 64
(Pillow bicubic), the averaging selection, and the *selected* genotype retrained at full size.
Paper-scale: meant for a GPU (on a 2-core CPU a 256-px image takes ~6 hours: an hour of scoring,
then ~1.7 hours per ranking).
Try it small (one ranking; about 2 minutes on a 2-core CPU, compilation included: 20 candidates
scored, the top 2 of `psd db strip mse` trained 30 steps, one static network compiled per member,
~20-60 s each on CPU): --config.num_candidates=20 --config.width=8 --config.top_n=2
--config.num_steps=30 "--config.rank_by=('psd db strip mse',)"
"""

from nasdip_jax.runs import isnas


def get_config():
  config = isnas.base_config()
  config.task = "denoise"
  config.sigma = 25.0
  config.num_steps = 1200
  config.resize_short_side = 64
  return config
