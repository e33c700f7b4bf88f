"""Image files in and out: validated 8-bit images and inpainting masks, the reference 32-px
crop, atomic PNG writes."""

import os
import tempfile

import numpy as np
from PIL import Image, UnidentifiedImageError

from nasdip_jax.errors import UserError

CHANNELS = {"rgb": 3, "gray": 1}
_MODE_FOR = {"rgb": "RGB", "gray": "L"}
MASK_MODES = ("1", "L", "P", "RGB")


def _decode(path: str, what: str, to_array) -> np.ndarray:
  """to_array(the opened Pillow image); a missing or undecodable file is a one-line UserError."""
  if os.path.isdir(path):
    raise UserError(f"{what} path is a directory, not a file: {path}")
  if not os.path.isfile(path):
    raise UserError(f"{what} file not found: {path}")
  try:
    with Image.open(path) as img:
      wide = [t.args for t in img.tile if ";16" in str(t.args)]  # known before decoding only
      img.load()
      if wide and img.mode in ("RGB", "L", "P", "1"):
        raise UserError(f"{path}: has 16 bits per sample, which Pillow reads as {img.mode} with 8 "
                        "(the low bits would be lost); save it with 8 bits per sample")
      return to_array(img)
  except UnidentifiedImageError:
    raise UserError(f"{path}: not an image file Pillow can read") from None
  except OSError as e:
    raise UserError(f"{path}: cannot decode image ({e})") from None


def load_image(path: str, channels: str, convert: bool = False) -> np.ndarray:
  """Reads an 8-bit RGB or grayscale image as uint8 (H, W, C), refusing anything else.

  Args:
    path: an image file Pillow can decode.
    channels: "rgb" or "gray"; the file's mode must match (no silent conversion) ...
    convert: ... unless this is set: then RGB and L are converted (Pillow) to `channels`.

  Raises:
    UserError: the file is missing, not an image, or not 8-bit RGB / L as asked.
  """
  if channels not in CHANNELS:
    raise UserError(f"channels must be 'rgb' or 'gray', got {channels!r}")

  def to_array(img):
    mode = img.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
      raise UserError(f"{path}: has an alpha channel (mode {mode}); save it as RGB or L")
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
      raise UserError(f"{path}: is a {mode} image (16/32-bit); convert it to 8-bit RGB or L")
    if mode not in ("RGB", "L"):
      raise UserError(f"{path}: unsupported image mode {mode}; use 8-bit RGB or grayscale L")
    want = _MODE_FOR[channels]
    if mode != want and convert:
      img, mode = img.convert(want), want
    if mode != want:
      got = "grayscale" if mode == "L" else "RGB"
      raise UserError(
          f"{path}: is {got} but the config expects {channels} "
          f"(set --config.channels={'gray' if mode == 'L' else 'rgb'})")
    return np.asarray(img, dtype=np.uint8)

  arr = _decode(path, "image", to_array)
  return arr.reshape(arr.shape[0], arr.shape[1], -1)


def load_mask(path: str) -> np.ndarray:
  """Reads an inpainting mask (nonzero = observed) as uint8 (H, W, 1): a 1-bit, grayscale,
  palette or RGB file; a pixel is observed when any of its channels (a palette's: its colour's)
  is nonzero, 255 then, 0 otherwise.

  Raises:
    UserError: the file is missing, not an image, or has another mode (alpha, 16-bit).
  """
  def to_array(img):
    if img.mode not in MASK_MODES or "transparency" in img.info:
      raise UserError(f"{path}: a mask of mode {img.mode} is not supported; save it as 1-bit, "
                      "grayscale L or RGB, without alpha")
    rgb = np.asarray(img.convert("RGB") if img.mode == "P" else img, dtype=np.uint8)
    return np.where(rgb.reshape(rgb.shape[0], rgb.shape[1], -1).any(axis=-1), 255,
                    0).astype(np.uint8)[..., None]

  return _decode(path, "mask", to_array)


def load_kernel(path: str) -> np.ndarray:
  """A blur kernel as a float64 2-D array: a `.npy` array, or an image file (its luminance),
  unnormalised. A file that is neither is a one-line UserError."""
  if path.endswith(".npy"):
    if not os.path.isfile(path):
      raise UserError(f"kernel file not found: {path}")
    try:
      k = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
      raise UserError(f"{path}: not a .npy array ({e})") from None
    if k.ndim != 2 or not np.issubdtype(k.dtype, np.number):
      raise UserError(f"{path}: a kernel must be a 2-D numeric array, got shape {k.shape} "
                      f"of {k.dtype}")
    return k.astype(np.float64)
  return _decode(path, "kernel", lambda img: np.asarray(img.convert("L"), np.float64))


def to_float(img: np.ndarray) -> np.ndarray:
  """uint8 (H, W, C) to float32 in [0, 1], exactly uint8 / 255 as the reference `pil_to_np`."""
  return img.astype(np.float32) / 255.0


def to_uint8(img: np.ndarray) -> np.ndarray:
  """float in [0, 1] to uint8 with rounding."""
  return np.clip(np.round(np.asarray(img, np.float64) * 255.0), 0, 255).astype(np.uint8)


def crop_to_multiple(img: np.ndarray, d: int = 32) -> np.ndarray:
  """Centre crop to multiples of d with the reference offset rule int((W - W') / 2).

  Raises:
    UserError: the image is smaller than d in either dimension.
  """
  h, w = img.shape[:2]
  if h < d or w < d:
    raise UserError(f"image is {w}x{h} px, smaller than the network's {d}-px granularity")
  nh, nw = h - h % d, w - w % d
  top, left = int((h - nh) / 2), int((w - nw) / 2)
  return img[top:top + nh, left:left + nw]


def pad_to_multiple(img: np.ndarray, d: int) -> np.ndarray:
  """Reflect-pads (H, W, C) at the bottom and right to multiples of d (a copy; `[:H, :W]` of the
  result is the image again)."""
  h, w = img.shape[:2]
  return np.pad(img, ((0, -h % d), (0, -w % d), (0, 0)), mode="reflect" if min(h, w) > 1
                else "edge")


def load_observation(path: str, channels: str) -> np.ndarray:
  """An observed image as float32 (H, W, C) in [0, 1]: an 8-bit image file (mode as
  `load_image`), or a `.npy` / `.npz` array (H, W) or (H, W, C) with any number of channels,
  uint8 (/ 255) or float in [0, 1] (an `.npz` holds one array).

  Raises:
    UserError: as `load_image`, or an array of another shape, dtype or range.
  """
  if not path.endswith((".npy", ".npz")):
    return to_float(load_image(path, channels))
  if not os.path.isfile(path):
    raise UserError(f"image file not found: {path}")
  try:
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):
      arrays = [loaded]
    else:
      with loaded:
        arrays = [loaded[k] for k in loaded.files]
  except (ValueError, OSError) as e:
    raise UserError(f"{path}: not a numpy array file ({e})") from None
  if len(arrays) != 1:
    raise UserError(f"{path}: an .npz image must hold exactly one array, got {len(arrays)}")
  a = arrays[0]
  if a.ndim == 2:
    a = a[..., None]
  if a.ndim != 3 or not (a.dtype == np.uint8 or np.issubdtype(a.dtype, np.floating)):
    raise UserError(f"{path}: an image array must be (H, W) or (H, W, C) of uint8 or float, "
                    f"got shape {a.shape} of {a.dtype}")
  if a.dtype == np.uint8:
    return to_float(a)
  if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
    raise UserError(f"{path}: a float image array must hold values in [0, 1], got "
                    f"[{np.nanmin(a):.3g}, {np.nanmax(a):.3g}]")
  return a.astype(np.float32)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
  """Centre crop to at most size x size pixels (offsets as `crop_to_multiple`)."""
  h, w = img.shape[:2]
  nh, nw = min(h, size), min(w, size)
  top, left = int((h - nh) / 2), int((w - nw) / 2)
  return img[top:top + nh, left:left + nw]


def save_png(path: str, img: np.ndarray) -> None:
  """Writes float [0, 1] or uint8 (H, W, C) as PNG atomically (temp file, then rename)."""
  arr = img if img.dtype == np.uint8 else to_uint8(img)
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  atomic_write(path, lambda f: Image.fromarray(arr).save(f, format="PNG"))


def atomic_write(path: str, write_fn) -> None:
  """Calls write_fn(binary file) on a temp file beside path, then renames it over path."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=os.path.basename(path))
  try:
    with os.fdopen(fd, "wb") as f:
      write_fn(f)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
