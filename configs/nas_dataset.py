"""python -m nasdip_jax.main --config=configs/nas_dataset.py --workdir=/tmp/nas_dataset --config.images='("a.png","b.png")'

ISNAS-DIP's NAS Dataset for DIP: the 522 architectures of benchmark/models.csv trained on each
image for sigma-25 denoising and 50% inpainting (4000 steps, EMA 0.99, grayscale), every PSNR
curve stored, the training-free metrics of 100 random outputs per architecture (one init, 100
input noises, as the reference's analysis), then Kendall's tau of every metric against the best
and final PSNR, best-of-top-5/15, the averaging selection's rank in the dataset and the paper's
histogram figure. Resumable: finished architectures are never retrained; rerun to re-analyse.
Paper-scale (522 x 4000 steps per image and task) is GPU work; a reduced run on CPU:
--config.num_candidates=40 --config.width=32 --config.num_steps=300 --config.crop_size=64.
"""

from nasdip_jax.runs import nas_dataset


def get_config():
  config = nas_dataset.base_config()
  config.tasks = ("denoise", "inpaint")
  config.sigma = 25.0
  config.keep_fraction = 0.5
  config.num_steps = 4000
  return config
