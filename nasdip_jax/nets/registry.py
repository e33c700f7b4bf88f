"""Networks by name, so configs pick them with `config.model`."""

from flax import nnx

from nasdip_jax.errors import UserError
from nasdip_jax.nets import skip

MODELS = {"skip": skip.SkipNet}


def build_model(name: str, net_kwargs: dict, in_ch: int, out_ch: int, *, rngs: nnx.Rngs):
  """Instantiates model `name` with `net_kwargs` (config.net) for in_ch -> out_ch channels."""
  if name not in MODELS:
    raise UserError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
  try:
    return MODELS[name](in_ch, out_ch, **net_kwargs, rngs=rngs)
  except (TypeError, ValueError) as e:
    raise UserError(f"cannot build model {name!r} from config.net: {e}") from None


def num_params(model) -> int:
  import jax  # pylint: disable=import-outside-toplevel
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
