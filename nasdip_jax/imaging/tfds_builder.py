"""The TFDS builder of a folder of images (array_record, readable without TensorFlow), prepared
by `register` (the command line: `python -m nasdip_jax.imaging.tfds_image_set`).

It lives apart from the command line: TFDS finds a builder's files through its class's module,
which must not be `__main__`.
"""

import os

import numpy as np
import tensorflow_datasets as tfds

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import image_sets


class NasdipImages(tfds.core.GeneratorBasedBuilder):
  """Images of a local folder (the manual dir); one builder config per named set."""

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Pass the image folder as the manual dir."

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
        "image": tfds.features.Tensor(shape=(None, None, None), dtype=np.uint8,
                                      encoding="zlib"),
        "name": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(dl_manager.manual_dir)}

  def _generate_examples(self, folder):
    for path in image_sets.folder_images(os.fspath(folder)):
      name = os.path.basename(path)
      yield name, {"image": image_sets.load_any(path), "name": name}


def register(name: str, folder: str, data_dir: str = "") -> str:
  """Prepares `folder`'s images as `nasdip_images/<name>`; returns the dataset's directory.
  UserError (before anything is written) for a folder that is missing or holds no images."""
  if not os.path.isdir(folder):
    raise UserError(f"image folder not found: {folder}")
  for path in image_sets.folder_images(folder):  # every image readable, none in an odd mode
    image_sets.load_any(path)
  builder = NasdipImages(config=tfds.core.BuilderConfig(name=name), data_dir=data_dir or None,
                         file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=folder))
  return builder.data_dir
