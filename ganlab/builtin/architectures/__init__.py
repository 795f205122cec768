"""Built-in architectures, registered through the same hook as any plugin.

* ``dcgan``: Radford et al. 2016, arXiv:1511.06434.
* ``mlp``: Goodfellow et al. 2014, arXiv:1406.2661.
* ``cdcgan``: class-conditional DCGAN with a projection discriminator,
  Miyato & Koyama 2018, arXiv:1802.05637.

The sibling modules import keras only inside their builders, so importing
this package to list plugins does not start a backend.
"""

from __future__ import annotations

from collections.abc import Callable

from ganlab.builtin.architectures import cdcgan, dcgan, mlp
from ganlab.hookspecs import hookimpl
from ganlab.specs import ArchitectureSpec


@hookimpl
def register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    """Register ``dcgan``, ``mlp`` and ``cdcgan``."""
    for spec in (dcgan.SPEC, mlp.SPEC, cdcgan.SPEC):
        register(spec)
