"""Fitting DIP networks: the objective, the jitted multi-step chunk, and the host loop."""
