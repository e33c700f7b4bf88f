"""Images, resampling, degradations, forward operators and quality metrics (numpy/JAX, no Flax)."""
