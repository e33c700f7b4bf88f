"""nasdip_jax: Deep Image Prior restoration and architecture search in JAX/Flax.

    import nasdip_jax
    result = nasdip_jax.restore(noisy_image, task="denoise")   # see nasdip_jax.api
"""

__version__ = "0.1.0"


def __getattr__(name):
  """`restore` and `RestoreResult` from nasdip_jax.api, imported on first use (JAX is heavy)."""
  if name in ("restore", "RestoreResult"):
    from nasdip_jax import api  # pylint: disable=import-outside-toplevel
    return getattr(api, name)
  raise AttributeError(f"module 'nasdip_jax' has no attribute {name!r}")
