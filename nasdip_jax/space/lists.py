"""The reference's architecture lists, shipped with the package (space/lists/).

`isnas_candidates_5000`: ISNAS-DIP's random_search/models_generated.lst (5000 names; 408 of them
use an unbuildable cell and are skipped, as the reference does). `nas_dataset_522`: the
architectures of ISNAS-DIP's "NAS Dataset for DIP" (benchmark/models.csv).
"""

import os

_DIR = os.path.join(os.path.dirname(__file__), "lists")
FILES = {"isnas_candidates_5000": "isnas_candidates_5000.txt",
         "nas_dataset_522": "isnas_nas_dataset_522.csv"}


def names(list_name: str) -> list:
  """The genotype names of a shipped list, in file order."""
  if list_name not in FILES:
    raise ValueError(f"unknown list {list_name!r}; choose from {sorted(FILES)}")
  with open(os.path.join(_DIR, FILES[list_name]), encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]
