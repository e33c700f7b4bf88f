"""Loads PyTorch state_dicts of the reference DIP skip network into `SkipNet` (tests only)."""

import numpy as np
from flax import nnx


def load_skip_state_dict(net, sd) -> int:
  """Copies reference weights (names as in deep-image-prior models/skip.py) into net; returns
  how many tensors were copied."""
  names = reference_grad_name_map(net)
  for name, path in names.items():
    node = net
    for part in path:
      node = node[part] if isinstance(part, int) else getattr(node, part)
    value = np.asarray(sd[name])
    node[...] = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value  # OIHW -> HWIO
  return len(names)


def reference_grad_name_map(net):
  """Maps each reference parameter name to a path into nnx.state(net, nnx.Param)."""
  names = {}
  prefix = ""
  for i, lv in enumerate(net.levels):
    blocks = [("down1", "1.1.1.1", "1.1.2"), ("down2", "1.1.4.1", "1.1.5"), ("up1", "3.1", "4")]
    if lv.skip is not None:
      blocks.append(("skip", "1.0.1.1", "1.0.2"))
    if lv.up2 is not None:
      blocks.append(("up2", "6.1", "7"))
    for attr, conv_name, bn_name in blocks:
      names[prefix + conv_name + ".weight"] = ("levels", i, attr, "conv", "kernel")
      names[prefix + conv_name + ".bias"] = ("levels", i, attr, "conv", "bias")
      names[prefix + bn_name + ".weight"] = ("levels", i, attr, "bn", "scale")
      names[prefix + bn_name + ".bias"] = ("levels", i, attr, "bn", "bias")
    names[prefix + "2.weight"] = ("levels", i, "bn_cat", "scale")
    names[prefix + "2.bias"] = ("levels", i, "bn_cat", "bias")
    prefix += "1.1.7."
  names["9.1.weight"] = ("head", "kernel")
  names["9.1.bias"] = ("head", "bias")
  return names


def state_leaf(state, path):
  node = state
  for p in path:
    node = node[p]
  return np.asarray(node[...] if isinstance(node, nnx.Variable) else node)
