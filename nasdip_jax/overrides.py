"""Command-line overrides `--config.PATH=VALUE`: parsing them as main does, and naming the one
whose PATH is not a field.

ml_collections reports a misspelt field as a bare KeyError ('nope') or an unrelated TypeError
(`--config.image.x` on a string field), without the flag; `unknown_field` finds the override.
"""

import difflib

from absl import flags
import ml_collections
from ml_collections import config_flags


def parse(config_file: str, args=()) -> ml_collections.ConfigDict:
  """The locked config that `nasdip_jax.main --config=config_file *args` runs (absl's and
  ml_collections' errors for a bad file, field or value)."""
  argv = ["nasdip_jax", f"--config={config_file}", *args]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  return values.config


def unknown_field(config: ml_collections.ConfigDict, args) -> str | None:
  """One line on the first `--config.PATH[=VALUE]` of args whose PATH names no field of config
  (with the closest field's name when one is close), or None if every PATH is a field."""
  for arg in args:
    if not arg.startswith("--config."):
      continue
    flag = arg.split("=", 1)[0]
    path, node = flag[len("--config."):].split("."), config
    for i, name in enumerate(path):
      where = ".".join(["config"] + path[:i])
      if not isinstance(node, ml_collections.ConfigDict):
        return f"{flag}: {where} is a {type(node).__name__}, it has no fields"
      if name not in node:
        close = difflib.get_close_matches(name, list(node.keys()), n=1, cutoff=0.75)
        hint = f" (did you mean {where}.{close[0]}?)" if close else ""
        return f"{flag}: {where} has no field {name!r}{hint}"
      node = node[name]
  return None
