"""Sets of images (a search's training images): a folder, listed files, or a TFDS dataset.

    load("path/to/folder", "gray")            # every image file in it, sorted by name
    load("a.png,b.png", "rgb")
    load("tfds:nasdip_images/set12", "gray")  # TFDS's "train" split; tfds:NAME:SPLIT for another

Images are converted to the asked channels (RGB <-> L, Pillow). TFDS datasets are read with
`tfds.data_source` (array_record, no TensorFlow); they need an "image" feature (uint8, H x W or
H x W x C) and may have a "name". `nasdip_jax.imaging.tfds_image_set` registers a folder.
"""

import glob
import os

import numpy as np
from PIL import Image

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import io as image_io

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def folder_images(folder: str) -> list:
  """The image files of a folder, sorted; a UserError if there are none."""
  paths = sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(SUFFIXES))
  if not paths:
    raise UserError(f"no images in {folder}")
  return paths


def load_any(path: str) -> np.ndarray:
  """An 8-bit RGB or grayscale file as stored: uint8 (H, W, 3) or (H, W, 1)."""
  try:
    return image_io.load_image(path, "rgb")
  except UserError as e:
    if "is grayscale" not in str(e):
      raise
    return image_io.load_image(path, "gray")


def _convert(img: np.ndarray, channels: str, what: str) -> np.ndarray:
  img = np.asarray(img)
  if img.dtype != np.uint8:
    raise UserError(f"{what}: images must be uint8, got {img.dtype}")
  img = img.reshape(img.shape[0], img.shape[1], -1)
  if img.shape[-1] not in (1, 3):
    raise UserError(f"{what}: images must have 1 or 3 channels, got {img.shape[-1]}")
  want = image_io.CHANNELS[channels]
  if img.shape[-1] != want:
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    img = np.asarray(pil.convert("L" if want == 1 else "RGB")).reshape(
        img.shape[0], img.shape[1], want)
  return img


def _load_tfds(spec: str, channels: str, data_dir: str) -> list:
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError(f"{spec!r} needs tensorflow-datasets: pip install -e \".[tfds]\"") from None
  name, _, split = spec[len("tfds:"):].partition(":")
  try:
    source = tfds.data_source(name, split=split or "train", data_dir=data_dir or None)
  except Exception as e:  # pylint: disable=broad-except  # tfds raises many kinds here
    raise UserError(f"cannot open TFDS dataset {spec!r}: {str(e).splitlines()[0]}") from None
  out = []
  for i in range(len(source)):
    example = source[i]
    if "image" not in example:
      raise UserError(f"TFDS dataset {spec!r} has no 'image' feature")
    label = example.get("name", f"{i:05d}")
    label = label.decode() if isinstance(label, bytes) else str(label)
    out.append((label, _convert(example["image"], channels, spec)))
  if not out:
    raise UserError(f"TFDS dataset {spec!r} is empty")
  return out


def load(spec: str, channels: str, tfds_data_dir: str = "") -> list:
  """[(name, uint8 (H, W, C))] of a folder, comma-separated files or `tfds:NAME[:SPLIT]`."""
  spec = spec.strip()
  if spec.startswith("tfds:"):
    return _load_tfds(spec, channels, tfds_data_dir)
  paths = folder_images(spec) if os.path.isdir(spec) else [
      p.strip() for p in spec.split(",") if p.strip()]
  return [(os.path.basename(p), image_io.load_image(p, channels, convert=True)) for p in paths]
