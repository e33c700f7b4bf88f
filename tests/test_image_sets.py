"""Image sets for searches: folders, file lists and TFDS datasets (array_record, no TensorFlow)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import image_sets
from nasdip_jax.imaging import tfds_builder
from nasdip_jax.runs import rl_search


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  d = tmp_path_factory.mktemp("imgs")
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
  gray = rng.integers(0, 256, (33, 48), dtype=np.uint8)
  Image.fromarray(rgb).save(d / "b_rgb.png")
  Image.fromarray(gray).save(d / "a_gray.png")
  (d / "notes.txt").write_text("not an image")
  return str(d), rgb, gray


def test_a_folder_loads_sorted_and_converted(folder):
  path, rgb, gray = folder
  got = image_sets.load(path, "gray")
  assert [n for n, _ in got] == ["a_gray.png", "b_rgb.png"]
  np.testing.assert_array_equal(got[0][1][..., 0], gray)
  np.testing.assert_array_equal(got[1][1][..., 0], np.asarray(Image.fromarray(rgb).convert("L")))
  listed = image_sets.load(os.path.join(path, "b_rgb.png"), "rgb")
  np.testing.assert_array_equal(listed[0][1], rgb)
  empty = os.path.join(path, "empty_sub")
  os.makedirs(empty, exist_ok=True)
  with pytest.raises(UserError, match="no images"):
    image_sets.load(empty, "rgb")


def test_a_registered_tfds_set_reads_back_without_tensorflow(folder, tmp_path):
  path, rgb, gray = folder
  tfds_builder.register("tiny", path, str(tmp_path))
  got = image_sets.load("tfds:nasdip_images/tiny", "rgb", str(tmp_path))
  want = image_sets.load(path, "rgb")
  assert [n for n, _ in got] == [n for n, _ in want]
  for (_, a), (_, b) in zip(got, want):
    np.testing.assert_array_equal(a, b)
  assert "tensorflow" not in sys.modules
  with pytest.raises(UserError, match="cannot open TFDS dataset"):
    image_sets.load("tfds:nasdip_images/missing", "rgb", str(tmp_path))
  # a search takes it as its training set
  config = rl_search.base_config()
  config.update(train_images="tfds:nasdip_images/tiny", tfds_data_dir=str(tmp_path),
                channels="gray", crop_size=32)
  names, _, problems = rl_search.load_train_problems(config)
  assert names == ["a_gray.png", "b_rgb.png"]
  assert [p.clean.shape for p in problems] == [(1, 32, 32, 1)] * 2


def test_the_registering_command_line(folder, tmp_path):
  """`python -m nasdip_jax.imaging.tfds_image_set` (README's command; it once failed in TFDS,
  which cannot place a builder defined in `__main__`), and a bad folder as one line."""
  path, _, _ = folder
  cli = [sys.executable, "-m", "nasdip_jax.imaging.tfds_image_set", f"--data_dir={tmp_path}"]
  r = subprocess.run(cli + ["--name=cli", f"--images={path}"], capture_output=True, text=True,
                     check=False)
  assert r.returncode == 0, r.stderr[-2000:]
  assert r.stdout.strip().splitlines()[-1].startswith("prepared tfds:nasdip_images/cli in ")
  got = image_sets.load("tfds:nasdip_images/cli", "rgb", str(tmp_path))
  assert [n for n, _ in got] == [n for n, _ in image_sets.load(path, "rgb")]
  r = subprocess.run(cli + ["--name=bad", f"--images={tmp_path}/nope"], capture_output=True,
                     text=True, check=False)
  assert r.returncode == 1
  assert r.stderr.strip().splitlines()[-1] == (
      f"tfds_image_set: error: image folder not found: {tmp_path}/nope")
  assert not os.path.exists(tmp_path / "nasdip_images" / "bad")
