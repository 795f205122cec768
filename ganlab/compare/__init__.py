"""Comparing runs: the terminal comparison table and the selection of runs to compare."""
