"""Searches: training-free metrics, ISNAS selection, the RL controller."""
