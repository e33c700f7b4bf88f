"""Networks by name, so configs pick them with `config.model` (and `config.genotype`)."""

import jax
from flax import nnx

from nasdip_jax.errors import UserError
from nasdip_jax.nets import nasdip
from nasdip_jax.nets import skip
from nasdip_jax.space import genotype as gt
from nasdip_jax.space import published

MODELS = ("skip", "skip_cell", "autoencoder", "nasdip") + tuple(published.PUBLISHED)
DROPOUT_MODELS = ("skip", "skip_cell", "autoencoder")  # called as net(z, dropout=(key, keep))
SKIP_WIDTH = 4  # the skip network's default skip-branch width at every level
SKIP_WIDTHS = (SKIP_WIDTH,) * 5  # config.net.channels_skip's default


def resolve_genotype(model: str, genotype: str):
  """The genotype a model runs: a published one by name, else parsed from `genotype`."""
  if model in published.PUBLISHED:
    if genotype:
      raise UserError(f"model {model!r} is a published architecture; leave config.genotype empty "
                      "or use model 'nasdip'")
    return published.PUBLISHED[model]
  if model in ("nasdip", "skip_cell"):
    if not genotype:
      raise UserError(f"model {model!r} needs config.genotype, e.g. '158_{'0' * 24}1'")
    return gt.from_name(genotype)
  if genotype:
    raise UserError(f"config.genotype is only used by models 'nasdip' and 'skip_cell', not {model!r}")
  return None


def build_model(name: str, net: dict, in_ch: int, out_ch: int, *, genotype: str = "",
                rngs: nnx.Rngs):
  """Instantiates model `name` for in_ch -> out_ch channels from config.net (+ a genotype)."""
  if name not in MODELS:
    raise UserError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
  g = resolve_genotype(name, genotype)
  try:
    if name == "skip":
      return skip.SkipNet(in_ch, out_ch, **net, rngs=rngs)
    if name == "skip_cell":
      return skip.SkipNet(in_ch, out_ch, **net, cell=g.cell, rngs=rngs)
    if name == "autoencoder":
      return skip.SkipNet(in_ch, out_ch, **autoencoder_net(net), rngs=rngs)
    widths = set(net["channels_down"]) | set(net["channels_up"])
    if len(widths) != 1:
      raise UserError(f"NAS-DIP networks have one width; got channels {sorted(widths)}")
    return nasdip.NasDipNet(in_ch, out_ch, g, width=widths.pop(), pad=net["pad"],
                            conv_impl=net["conv_impl"], rngs=rngs)
  except UserError:
    raise
  except (TypeError, ValueError) as e:
    raise UserError(f"cannot build model {name!r} from config.net: {e}") from None


def autoencoder_net(net: dict) -> dict:
  """config.net for the study's autoencoder: the skip network without skip branches (DIP's
  notebooks' variant). Its skip widths must be all 0 or left at the default width."""
  widths = tuple(net["channels_skip"])
  if any(widths) and set(widths) != {SKIP_WIDTH}:
    raise UserError(f"model 'autoencoder' has no skip connections, but config.net.channels_skip "
                    f"is {widths}; leave it at its default, set it to zeros, or use model 'skip'")
  return {**net, "channels_skip": (0,) * len(widths)}


def check_dropout(name: str, keep: float) -> None:
  """UserError if dropout is asked of a model that does not take it."""
  if keep < 1 and name not in DROPOUT_MODELS:
    raise UserError(f"config.dropout_keep={keep} needs a model with dropout "
                    f"({' / '.join(DROPOUT_MODELS)}); model {name!r} has none")


def genotype_name(model: str, genotype: str):
  g = resolve_genotype(model, genotype)
  return None if g is None else gt.to_name(g)


def num_params(model) -> int:
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
