"""Search: sampled sweeps (Optuna's samplers) and early stopping of the losers (Optuna's pruners).

The queue stays the one source of truth: every Optuna study here is rebuilt
in memory from the queue's rows when it is needed, and thrown away after.
"""
