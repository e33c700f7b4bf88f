"""Image sets for searches: folders, file lists and TFDS datasets (array_record, no TensorFlow)."""

import os
import sys

import numpy as np
import pytest
from PIL import Image

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import image_sets
from nasdip_jax.imaging import tfds_image_set
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
  tfds_image_set.register("tiny", path, str(tmp_path))
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
