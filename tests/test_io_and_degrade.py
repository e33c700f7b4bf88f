"""Image loading (and its refusals), the reference crop rule, degradations and operators."""

import os

import numpy as np
import pytest
from PIL import Image

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import degrade
from nasdip_jax.imaging import operators
from nasdip_jax.imaging import io as image_io
from nasdip_jax.runs import common
from nasdip_jax.runs import restore


def _save(tmp_path, name, arr):
  path = os.path.join(tmp_path, name)
  Image.fromarray(arr).save(path)
  return path


@pytest.fixture
def rgb_u8():
  return (np.random.default_rng(1).random((64, 96, 3)) * 255).astype(np.uint8)


def test_load_rgb_and_gray(tmp_path, rgb_u8):
  img = image_io.load_image(_save(tmp_path, "a.png", rgb_u8), "rgb")
  np.testing.assert_array_equal(img, rgb_u8)
  gray = image_io.load_image(_save(tmp_path, "g.png", rgb_u8[..., 0]), "gray")
  assert gray.shape == (64, 96, 1)
  assert image_io.to_float(img).dtype == np.float32
  np.testing.assert_array_equal(image_io.to_float(img), rgb_u8.astype(np.float32) / 255)


@pytest.mark.parametrize("make,channels,match", [
    (lambda t, a: os.path.join(t, "missing.png"), "rgb", "not found"),
    (lambda t, a: _write_text(t), "rgb", "not an image"),
    (lambda t, a: _save(t, "rgba.png", np.dstack([a, a[..., :1]])), "rgb", "alpha"),
    (lambda t, a: _save(t, "i16.png", a[..., 0].astype(np.uint16) * 200), "gray", "16"),
    (lambda t, a: _save(t, "g.png", a[..., 0]), "rgb", "grayscale but the config expects rgb"),
    (lambda t, a: _save(t, "c.png", a), "gray", "RGB but the config expects gray"),
])
def test_load_refuses_bad_input(tmp_path, rgb_u8, make, channels, match):
  with pytest.raises(UserError, match=match) as e:
    image_io.load_image(make(str(tmp_path), rgb_u8), channels)
  assert "\n" not in str(e.value)


def _write_text(tmp):
  path = os.path.join(tmp, "notes.png")
  with open(path, "w") as f:
    f.write("not a picture")
  return path


def test_crop_rule_matches_reference():
  img = np.arange(500 * 480).reshape(480, 500, 1)  # H 480, W 500 -> 480 x 480, left offset 10
  out = image_io.crop_to_multiple(img, 32)
  assert out.shape == (480, 480, 1)
  np.testing.assert_array_equal(out, img[:, 10:490])
  odd = np.arange(37 * 70).reshape(37, 70, 1)  # remainders 5 and 6: offsets int(2.5)=2, 3
  np.testing.assert_array_equal(image_io.crop_to_multiple(odd, 32), odd[2:34, 3:67])


def test_crop_refuses_too_small():
  with pytest.raises(UserError, match="smaller than the network's 32-px"):
    image_io.crop_to_multiple(np.zeros((31, 64, 3)), 32)


def test_save_png_is_atomic_and_round_trips(tmp_path, rgb_u8):
  path = os.path.join(tmp_path, "x.png")
  image_io.save_png(path, image_io.to_float(rgb_u8))
  np.testing.assert_array_equal(np.asarray(Image.open(path)), rgb_u8)
  assert os.listdir(tmp_path) == ["x.png"]


def test_denoise_problem(rgb_u8):
  spec, p = degrade.make_problem(rgb_u8, "denoise", np.random.default_rng(0), sigma=25)
  x = image_io.to_float(rgb_u8)
  assert spec == degrade.OperatorSpec("denoise", operators.Identity())
  assert p.observation.dtype == np.float32 and p.observation.shape == (1, 64, 96, 3)
  assert p.observation.min() >= 0 and p.observation.max() <= 1
  np.testing.assert_array_equal(p.clean[0], x)
  inner = (x > 0.25) & (x < 0.75)  # far from the clip, the noise is N(0, (25/255)^2)
  noise = (p.observation[0] - x)[inner]
  assert abs(noise.std() - 25 / 255) < 0.004 and abs(noise.mean()) < 0.003
  np.testing.assert_array_equal(spec.apply(p.observation, p.mask), p.observation)


def test_inpaint_problem_bernoulli_and_mask_file(rgb_u8):
  gray = rgb_u8[..., :1]
  spec, p = degrade.make_problem(gray, "inpaint", np.random.default_rng(0), keep_fraction=0.3)
  assert p.mask.shape == (1, 64, 96, 1) and set(np.unique(p.mask)) <= {0.0, 1.0}
  assert abs(p.mask.mean() - 0.3) < 0.03
  np.testing.assert_array_equal(p.observation, p.clean * p.mask)
  np.testing.assert_array_equal(np.asarray(spec.apply(p.clean, p.mask)), p.observation)
  m = np.zeros((64, 96, 1), np.uint8)
  m[:, :40] = 255
  _, p2 = degrade.make_problem(gray, "inpaint", np.random.default_rng(0), mask_u8=m)
  assert p2.mask.sum() == 64 * 40
  with pytest.raises(UserError, match="mask is"):
    degrade.make_problem(gray, "inpaint", np.random.default_rng(0), mask_u8=m[:32])


def _inpaint_config(image, mask):
  c = restore.base_config()
  c.update(task="inpaint", image=image, mask=mask, channels="gray", crop_size=64)
  return c


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB"])
def test_mask_file_of_any_plain_mode_is_cropped_as_the_image(tmp_path, mode):
  """A mask drawn from the image itself (observed where it is bright): after the centre crop
  to 64 px of a 90x100 image, it must still be exactly where the cropped image is bright."""
  img = (np.random.default_rng(2).random((90, 100)) * 255).astype(np.uint8)
  mask = Image.fromarray(np.where(img > 128, 255, 0).astype(np.uint8)).convert(mode)
  mask_path = os.path.join(tmp_path, "mask.png")
  mask.save(mask_path)
  _, _, p = common.load_problem(_inpaint_config(_save(tmp_path, "im.png", img), mask_path))
  assert p.mask.shape == (1, 64, 64, 1)
  np.testing.assert_array_equal(p.mask, (np.round(p.clean * 255) > 128).astype(np.float32))
  np.testing.assert_array_equal(p.observation, p.clean * p.mask)


@pytest.mark.parametrize("make,match", [
    (lambda t: os.path.join(t, "missing.png"), "mask file not found"),
    (lambda t: _write_text(t), "not an image"),
    (lambda t: _save(t, "rgba.png", np.zeros((90, 100, 4), np.uint8)),
     "a mask of mode RGBA is not supported"),
    (lambda t: _save(t, "small.png", np.zeros((64, 64), np.uint8)),
     "the mask is 64x64 px but the image is 100x90"),
])
def test_bad_mask_files_are_refused(tmp_path, make, match):
  image = _save(tmp_path, "im.png", np.zeros((90, 100), np.uint8))
  with pytest.raises(UserError, match=match) as e:
    common.load_problem(_inpaint_config(image, make(str(tmp_path))))
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_sr_problem(rgb_u8, factor):
  spec, p = degrade.make_problem(rgb_u8, "sr", np.random.default_rng(0), factor=factor)
  assert spec == degrade.OperatorSpec("sr", operators.Downsample(factor))
  # the reference's LR image: Pillow's Lanczos resize of the HR image, called directly
  lr = np.asarray(Image.fromarray(rgb_u8).resize((96 // factor, 64 // factor),
                                                 Image.Resampling.LANCZOS))
  np.testing.assert_array_equal(p.observation[0], lr.astype(np.float32) / 255.0)
  assert spec.apply(p.clean, p.mask).shape == p.observation.shape


def test_bad_task_and_factor(rgb_u8):
  with pytest.raises(UserError, match="unknown task"):
    degrade.make_problem(rgb_u8, "deblurring", np.random.default_rng(0))
  with pytest.raises(UserError, match="factor must be 2, 4 or 8"):
    degrade.make_problem(rgb_u8, "sr", np.random.default_rng(0), factor=3)


def test_baseline_estimates(rgb_u8):
  spec, p = degrade.make_problem(rgb_u8, "sr", np.random.default_rng(0), factor=4)
  up = degrade.baseline_estimate(spec, p)
  assert up.shape == (64, 96, 3)
  spec_d, p_d = degrade.make_problem(rgb_u8, "denoise", np.random.default_rng(0))
  np.testing.assert_array_equal(degrade.baseline_estimate(spec_d, p_d), p_d.observation[0])
  noisy_psnr = degrade.quality(spec_d, p_d.clean[0], p_d.observation[0])
  assert 20.0 < noisy_psnr < 21.0  # sigma 25 on [0,1]: 20*log10(255/25) = 20.2 dB before clipping


def test_center_crop():
  img = np.arange(40 * 30).reshape(30, 40, 1)
  np.testing.assert_array_equal(image_io.center_crop(img, 20), img[5:25, 10:30])
  np.testing.assert_array_equal(image_io.center_crop(img, 35), img[:, 2:37])


def _png16(path, arr):
  """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): IHDR bit depth 16."""
  import struct  # pylint: disable=import-outside-toplevel
  import zlib  # pylint: disable=import-outside-toplevel
  h, w, c = arr.shape
  chunk = lambda t, d: (struct.pack(">I", len(d)) + t + d
                        + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF))
  rows = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))
  header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2}[c], 0, 0, 0)
  with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_pngs_are_refused_in_one_line_never_truncated(tmp_path, channels):
  arr = (np.random.default_rng(0).random((40, 40, channels)) * 65535).astype(np.uint16)
  path = str(tmp_path / "deep.png")
  _png16(path, arr)
  with pytest.raises(UserError, match="16") as e:
    image_io.load_image(path, "rgb" if channels == 3 else "gray")
  assert "\n" not in str(e.value)
  with pytest.raises(UserError, match="16"):
    image_io.load_mask(path)


def test_a_mask_pixel_is_observed_when_any_channel_is_nonzero(tmp_path):
  """Faint colours (e.g. pure dark blue, whose grayscale luma rounds to 0) count as observed."""
  rgb = np.zeros((8, 8, 3), np.uint8)
  rgb[0, 0] = (0, 0, 1)
  rgb[1, 1] = (3, 0, 0)
  path = str(tmp_path / "m.png")
  Image.fromarray(rgb).save(path)
  m = image_io.load_mask(path)[..., 0]
  assert m[0, 0] == m[1, 1] == 255 and m.sum() == 2 * 255
