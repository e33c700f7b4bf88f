"""nasdip_jax: Deep Image Prior restoration and architecture search in JAX/Flax."""

__version__ = "0.1.0"
