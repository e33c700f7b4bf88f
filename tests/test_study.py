"""The network-structure study's tables as runs: every cell written, the study's numbers beside
ours, resumed without recomputing, bad input refused before anything is written."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import assert_strict_json
from nasdip_jax import compilations
from nasdip_jax import study_tables
from nasdip_jax.errors import UserError
from nasdip_jax.runs import study
from test_configs_and_cli import load_config


def _tiny(**overrides):
  c = load_config("study_single_pixel").get_config()
  c.update(images=("logo",), levels=(1,), methods=("tv", "nlm", "dip"), crop_size=32,
           num_steps=6, es_window=3, pnp_rounds=2, admm_iterations=50, checkpoint_every=0,
           steps_per_call=3, width=8)
  c.update(overrides)
  return c


def test_a_tiny_single_pixel_table_writes_every_cell_and_resumes(tmp_path, capsys):
  workdir = str(tmp_path / "study")
  summary = study.run(_tiny(), workdir)
  # without a terminal, the DIP cell's fit says where it is (here: its last step)
  assert "nasdip_jax: DIP fit: 6/6 steps, psnr " in capsys.readouterr().err
  assert summary["cells"] == 3 and summary["num_steps"] == 6 and summary["crop_size"] == 32
  assert summary["width"] == 8
  rows = {r["method"]: r for r in json.load(open(os.path.join(workdir, "results.json")))}
  published = study_tables.published_row(study_tables.SINGLE_PIXEL, "logo", 1)
  assert rows["tv"]["published"] == published["tv"] == 51.1815 and rows["dip"]["published"] is None
  # CF 1: the measurements determine the image; TV-ADMM's answer is all but exact
  assert rows["tv"]["psnr"] > 40
  assert {"psnr_best", "psnr_stop", "stop_step", "best_step"} <= set(rows["dip"])
  table = open(os.path.join(workdir, "results.md")).read()
  assert "| logo | 1 | tv |" in table and "51.181" in table
  for name in ("results.csv", "grid.png", "summary.json", "cells/logo_1_dip.png"):
    assert os.path.isfile(os.path.join(workdir, name)), name
  assert assert_strict_json(workdir) >= 5
  # a rerun computes nothing and rewrites no cell
  before = {n: os.path.getmtime(os.path.join(workdir, "cells", n))
            for n in os.listdir(os.path.join(workdir, "cells"))}
  with compilations.counting() as compiled:
    again = study.run(_tiny(), workdir)
  assert compiled.n == 0 and again["cells"] == 3
  assert before == {n: os.path.getmtime(os.path.join(workdir, "cells", n)) for n in before}
  # a cell computed from another image file (the table's image changed since) is computed again
  tv_cell = os.path.join(workdir, "cells", "logo_1_tv.json")
  assert json.load(open(tv_cell))["source"] == "bundled:logo.png"
  json.dump({**json.load(open(tv_cell)), "source": "Set12/07.png"}, open(tv_cell, "w"))
  study.run(_tiny(), workdir)
  assert json.load(open(tv_cell))["source"] == "bundled:logo.png"
  assert {n for n in before if os.path.getmtime(os.path.join(workdir, "cells", n)) != before[n]} \
      == {"logo_1_tv.json", "logo_1_tv.png"}
  with pytest.raises(UserError, match="other settings \\(seed\\)"):
    study.run(_tiny(seed=1), workdir)
  # a run saved before pnp_rho_growth existed ran with a fixed rho: it resumes at 1 only
  saved = json.load(open(os.path.join(workdir, "config.json")))
  del saved["pnp_rho_growth"]
  json.dump(saved, open(os.path.join(workdir, "config.json"), "w"))
  assert _tiny().pnp_rho_growth != 1.0
  with pytest.raises(UserError, match="other settings \\(pnp_rho_growth\\)"):
    study.run(_tiny(), workdir)
  study.run(_tiny(pnp_rho_growth=1.0), workdir)


def test_a_table_without_plug_and_play_resumes_when_only_its_fields_changed(tmp_path):
  """A deconvolution run saved under other plug-and-play defaults resumes (its methods never read
  them); a field it does read (ADMM's iterations) still refuses, as do all of them for Table 3."""
  os.makedirs(tmp_path / "data" / "BM3D")
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 256, (40, 40), np.uint8)).save(tmp_path / "data/BM3D/house.png")
  c = load_config("study_deconvolution").get_config()
  c.update(data_dir=str(tmp_path / "data"), images=("house",), levels=(1e-2,),
           methods=("wiener",), crop_size=32)
  workdir = str(tmp_path / "study")
  study.run(c, workdir)
  c.update(pnp_rho=0.5, pnp_rho_growth=1.0, pnp_rounds=3, prox_steps=2, tv_lambda=0.1)
  assert study.run(c, workdir)["cells"] == 1
  c.admm_iterations += 1
  with pytest.raises(UserError, match="other settings \\(admm_iterations\\)"):
    study.run(c, workdir)
  assert set(study.unread_fields("single_pixel")) == set()


@pytest.mark.parametrize("overrides,match", [
    (dict(methods=("tv", "wavelet")), "config.methods must be distinct values from"),
    (dict(tv_lambda=0.0), "config.tv_lambda must be > 0"),
    (dict(pnp_rho=-1.0), "config.pnp_rho must be > 0"),
    (dict(pnp_rho_growth=0.5), "config.pnp_rho_growth must be >= 1"),
    (dict(images=("barbara",)), "give their folder as --config.data_dir"),
    (dict(images=("barbara",), data_dir="/no such dir"), "image file not found"),
    (dict(table="tables"), "config.table must be one of"),
])
def test_bad_study_input_is_refused_before_writing(tmp_path, overrides, match):
  with pytest.raises(UserError, match=match):
    study.run(_tiny(**overrides), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_bm3d_without_its_package_says_how_to_install_it(tmp_path, without_bm3d):
  del without_bm3d
  with pytest.raises(UserError, match=r'pip install -e "\.\[bm3d\]"'):
    study.run(_tiny(methods=("bm3d",)), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_the_dip_cells_stop_by_the_estimated_noise_level():
  """Stop 'auto' in the study: denoising by the discrepancy stop below sigma-hat 64 (0..255),
  the held-out stop from 64 up; ES-WMV through the deconvolution and single-pixel operators; a
  named stop as given."""
  auto, named = _tiny(stop="auto"), _tiny(stop="es-wmv")
  assert study.dip_stop(auto, "denoise", None) == "discrepancy"
  assert study.dip_stop(auto, "denoise", 63.9) == "discrepancy"
  assert study.dip_stop(auto, "denoise", 64.0) == "holdout"
  assert study.dip_stop(auto, "deblur", 90.0) == "es-wmv"
  assert study.dip_stop(auto, "single_pixel") == "es-wmv"
  assert study.dip_stop(named, "denoise", 90.0) == "es-wmv"
