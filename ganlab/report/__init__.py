"""``ganlab report``: the selected runs as one self-contained HTML page (table, curves, samples)."""
