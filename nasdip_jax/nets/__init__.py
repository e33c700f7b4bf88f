"""Flax NNX networks: PyTorch-faithful layers and the DIP skip encoder-decoder."""
