"""Loads PyTorch state_dicts of the reference DIP skip network into `SkipNet` (tests only)."""

import numpy as np
from flax import nnx


def _conv(module, sd, prefix):
  module.kernel[...] = np.asarray(sd[prefix + ".weight"]).transpose(2, 3, 1, 0)
  if module.bias is not None:
    module.bias[...] = np.asarray(sd[prefix + ".bias"])


def _bn(module, sd, prefix):
  module.scale[...] = np.asarray(sd[prefix + ".weight"])
  module.bias[...] = np.asarray(sd[prefix + ".bias"])


def load_skip_state_dict(net, sd) -> int:
  """Copies reference weights (names as in deep-image-prior models/skip.py) into net.

  Level i has prefix P_i ("" then P_i + "1.1.7."); returns how many tensors were copied.
  """
  copied = 0
  prefix = ""
  for lv in net.levels:
    pairs = [(lv.down1, "1.1.1.1", "1.1.2"), (lv.down2, "1.1.4.1", "1.1.5"),
             (lv.up1, "3.1", "4")]
    if lv.skip is not None:
      pairs.append((lv.skip, "1.0.1.1", "1.0.2"))
    if lv.up2 is not None:
      pairs.append((lv.up2, "6.1", "7"))
    for block, conv_name, bn_name in pairs:
      _conv(block.conv, sd, prefix + conv_name)
      _bn(block.bn, sd, prefix + bn_name)
      copied += 4
    _bn(lv.bn_cat, sd, prefix + "2")
    copied += 2
    prefix += "1.1.7."
  _conv(net.head, sd, "9.1")
  return copied + 2


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
