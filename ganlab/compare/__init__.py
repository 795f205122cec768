"""Comparing runs: TensorBoard launching and the terminal comparison table."""
