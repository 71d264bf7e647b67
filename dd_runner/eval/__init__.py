"""Evaluation: train fresh networks on a step sequence and measure them; baselines at equal budget."""
