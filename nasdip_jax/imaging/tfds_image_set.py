"""A folder of images as a TFDS dataset (array_record, readable without TensorFlow), so a
training set can be named instead of pathed: `--config.train_images=tfds:nasdip_images/NAME`.

    python -m nasdip_jax.imaging.tfds_image_set --name=set12 --images=path/to/Set12 \
        [--data_dir=~/tensorflow_datasets]

Every 8-bit RGB or grayscale image of the folder becomes one example of the "train" split:
{"image": uint8 (H, W, C) as stored, C = 1 or 3; "name": the file name}. Needs the `tfds` extra
(`pip install -e ".[tfds]"`); TensorFlow is not needed. The builder: `imaging/tfds_builder.py`.
"""

import sys

from absl import app
from absl import flags

from nasdip_jax.errors import UserError
from nasdip_jax.imaging import tfds_builder

_NAME = flags.DEFINE_string("name", None, "The set's name: tfds:nasdip_images/<name>.",
                            required=True)
_IMAGES = flags.DEFINE_string("images", None, "The folder of images.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data dir (default ~/tensorflow_datasets).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    path = tfds_builder.register(_NAME.value, _IMAGES.value, _DATA_DIR.value)
  except (UserError, ValueError) as e:  # ValueError: TFDS refusing the name
    sys.exit(f"tfds_image_set: error: {' '.join(str(e).split())}")
  print(f"prepared tfds:nasdip_images/{_NAME.value} in {path}")


if __name__ == "__main__":
  app.run(main)
