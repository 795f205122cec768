"""Starting files for ``ganlab plugins new``: one working plugin per kind, copied with its name filled in.

They are ordinary plugin files (docs/plugins.md shows them verbatim, and the
tests train each one), so they are kept here as ``.py`` files, not strings.
"""
