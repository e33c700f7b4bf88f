"""The network-structure study's inverse problems at reduced scale on a CPU: DIP through the blur
and Wiener + DIP (House, Parrots; noise 1e-3 / 1e-2 / 1e-1), DIP through the single-pixel
Hadamard operator (the synthetic logo, Barbara; CF 1 / 2 / 4 / 8) and the regularisation study;
final and best PSNR, SSIM and wall time per run, the study's published value beside ours.

    python benchmarks/inverse_problems.py [--crop=128] [--width=32] [--data_dir=../shared/data]

Reduced scale: centre crops, a skip network of width --width (the configs' recipes otherwise),
--deblur_steps / --spi_steps / --reg_steps steps. Runs resume (rerun after a kill: finished runs
are read back without compiling). Writes benchmarks/results/inverse_problems.json and its tables
in benchmarks/README.md.
"""

import os
import sys

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import report  # pylint: disable=wrong-import-position
from configs import deblur, regularisation as regularisation_config, single_pixel  # pylint: disable=wrong-import-position
from nasdip_jax.runs import regularisation, restore  # pylint: disable=wrong-import-position

_DATA = flags.DEFINE_string("data_dir", os.path.join(report.HERE, "..", "..", "shared", "data"),
                            "Folder with the standard test sets.")
_CROP = flags.DEFINE_integer("crop", 128, "Centre crop (px) of the photographs.", lower_bound=32)
_WIDTH = flags.DEFINE_integer("width", 32, "Channels of every level of the skip network.",
                              lower_bound=1)
_DEBLUR_STEPS = flags.DEFINE_integer("deblur_steps", 600, "DIP steps per deblurring run.",
                                     lower_bound=1)
_SPI_STEPS = flags.DEFINE_integer("spi_steps", 3000, "DIP steps per single-pixel run.",
                                  lower_bound=1)
_REG_STEPS = flags.DEFINE_integer("reg_steps", 500, "Steps per regularisation-study fit.",
                                  lower_bound=1)
_REG_CROP = flags.DEFINE_integer("reg_crop", 64, "Centre crop (px) of Lena for the "
                                 "regularisation study.", lower_bound=32)
_PARTS = flags.DEFINE_list("parts", ["deblur", "single_pixel", "regularisation"], "What to run.")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/nasdip_inverse", "Where the runs write.")
report.choice_list(_PARTS, ("deblur", "single_pixel", "regularisation"))

# The study's Table 1 (Wiener, Wiener + NS) and Table 3 (NS) values, PSNR dB, full-size images.
STUDY_DEBLUR = {("house", 1e-3): (24.9376, 24.8879), ("house", 1e-2): (23.5545, 23.4526),
                ("house", 1e-1): (18.1195, 17.6956), ("parrots", 1e-3): (26.6473, 25.7898),
                ("parrots", 1e-2): (25.8921, 25.2730), ("parrots", 1e-1): (19.6848, 19.5468)}
STUDY_SPI = {("logo", 1): 18.9983, ("logo", 2): 23.4179, ("logo", 4): 13.5192,
             ("logo", 8): 10.9844, ("barbara", 1): 23.3253, ("barbara", 2): 20.7045,
             ("barbara", 4): 19.0856, ("barbara", 8): 16.7318}
DEBLUR_IMAGES = {"house": "BM3D/house.png", "parrots": "Set12/07.png"}
SPI_IMAGES = {"logo": "", "barbara": "BM3D/barbara.png"}  # "": the bundled 64-px logo


def _net(config):
  config.net.channels_down = (_WIDTH.value,) * 5
  config.net.channels_up = (_WIDTH.value,) * 5
  config.checkpoint_every = 500
  return config


def _row(s, **extra):
  return {**extra, "px": s["image_size"][0], "steps": s["steps"], "psnr_input": s["psnr_input"],
          "psnr_final": s["psnr_final"], "psnr_best": s["psnr_best"], "best_step": s["best_step"],
          "ssim_final": s["ssim_final"], "ssim_best": s["ssim_best"],
          "wall_seconds": s["wall_seconds"]}


def run_deblur(rows):
  for name, image in DEBLUR_IMAGES.items():
    for sigma in (1e-3, 1e-2, 1e-1):
      wiener_study, wiener_ns_study = STUDY_DEBLUR[name, sigma]
      for method in ("through_blur", "wiener_dip"):
        config = _net(deblur.get_config())
        config.update(image=os.path.join(_DATA.value, image), crop_size=_CROP.value,
                      noise_std=sigma, wiener_dip=method == "wiener_dip",
                      num_steps=_DEBLUR_STEPS.value)
        s = restore.run(config, os.path.join(_WORKDIR.value, f"deblur_{name}_{sigma}_{method}"))
        rows.append(_row(s, part="deblur", image=name, noise=sigma, method=method,
                         study_wiener=wiener_study,
                         study_ns=wiener_ns_study if method == "wiener_dip" else None))
        print(rows[-1], flush=True)


def run_single_pixel(rows):
  for name, image in SPI_IMAGES.items():
    for cf in (1, 2, 4, 8):
      config = _net(single_pixel.get_config())
      config.update(compression=float(cf), num_steps=_SPI_STEPS.value)
      if image:
        config.update(image=os.path.join(_DATA.value, image), crop_size=_CROP.value)
      s = restore.run(config, os.path.join(_WORKDIR.value, f"spi_{name}_cf{cf}"))
      rows.append(_row(s, part="single_pixel", image=name, cf=cf, method="through_A",
                       study_ns=STUDY_SPI[name, cf]))
      print(rows[-1], flush=True)


def run_regularisation(rows):
  config = _net(regularisation_config.get_config())
  config.update(image=os.path.join(_DATA.value, "BM3D/Lena512.png"), channels="gray",
                crop_size=_REG_CROP.value, num_steps=_REG_STEPS.value)
  s = regularisation.run(config, os.path.join(_WORKDIR.value, "regularisation"))
  for fit in s["fits"]:
    rows.append({"part": "regularisation", "image": "lena", "px": _REG_CROP.value,
                 "steps": s["steps"], **fit, "wall_seconds": s["wall_seconds"] / len(s["fits"])})
    print(rows[-1], flush=True)


def main(argv):
  del argv
  rows = []
  parts = {"deblur": run_deblur, "single_pixel": run_single_pixel,
           "regularisation": run_regularisation}
  for part in _PARTS.value:
    parts[part](rows)
  result = {"machine": report.machine(), "crop": _CROP.value, "width": _WIDTH.value,
            "rows": rows}
  report.write_json(os.path.join(report.RESULTS, "inverse_problems.json"), result)
  cols = {"deblur": ["image", "noise", "method", "px", "steps", "psnr_input", "study_wiener",
                     "psnr_final", "psnr_best", "study_ns", "ssim_final", "wall_seconds"],
          "single_pixel": ["image", "cf", "px", "steps", "psnr_input", "psnr_final", "psnr_best",
                           "study_ns", "ssim_final", "ssim_best", "wall_seconds"],
          "regularisation": ["target", "regulariser", "px", "steps", "loss_final",
                             "psnr_target_final", "psnr_clean_final", "psnr_clean_best"]}
  for part in _PARTS.value:
    report.update_readme_table(f"inverse_problems_{part}", result["machine"],
                               [r for r in rows if r["part"] == part], cols[part])


if __name__ == "__main__":
  report.run(main)
