"""A folder of images as a TFDS dataset (array_record, readable without TensorFlow), so a
training set can be named instead of pathed: `--config.train_images=tfds:nasdip_images/NAME`.

    python -m nasdip_jax.imaging.tfds_image_set --name=set12 --images=path/to/Set12 \
        [--data_dir=~/tensorflow_datasets]

Every 8-bit RGB or grayscale image of the folder becomes one example of the "train" split:
{"image": uint8 (H, W, C) as stored, C = 1 or 3; "name": the file name}. Needs the `tfds` extra
(`pip install -e ".[tfds]"`); TensorFlow is not needed.
"""

import os

from absl import app
from absl import flags
import numpy as np
import tensorflow_datasets as tfds

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
  """Prepares `folder`'s images as `nasdip_images/<name>`; returns the dataset's directory."""
  builder = NasdipImages(config=tfds.core.BuilderConfig(name=name), data_dir=data_dir or None,
                         file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=folder))
  return builder.data_dir


_NAME = flags.DEFINE_string("name", None, "The set's name: tfds:nasdip_images/<name>.")
_IMAGES = flags.DEFINE_string("images", None, "The folder of images.")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data dir (default ~/tensorflow_datasets).")


def main(argv):
  del argv
  path = register(_NAME.value, _IMAGES.value, _DATA_DIR.value)
  print(f"prepared tfds:nasdip_images/{_NAME.value} in {path}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["name", "images"])
  app.run(main)
