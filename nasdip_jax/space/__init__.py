"""The NAS-DIP search space as data: genotypes, their codecs, validation and sampling (no Flax)."""
