"""``python -m ganlab.build_probe``: build architectures symbolically and say whether they fit their data.

``queue add`` runs this in a child process so that it never imports Keras
itself. The request (JSON on stdin) names the plugins folder and the exact
plugin files to load (each verified against its hash, as a worker child
does) and lists the builds; the answer (JSON on stdout) holds one outcome per
build. Both networks are built and traced on symbolic inputs
(``compute_output_spec``): no data, no forward pass, no training.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from ganlab.errors import GanlabError


def probe(registry: Any, request: dict[str, Any]) -> dict[str, Any]:
    """One build's outcome: ``{"ok": True}`` or ``{"ok": False, "error": why}`` naming both shapes."""
    import keras

    from ganlab.specs import BuildContext

    arch = registry.architecture(request["architecture"])
    shape = tuple(int(d) for d in request["image_shape"])
    ctx = BuildContext(image_shape=shape, num_classes=request["num_classes"], latent_dim=int(request["latent_dim"]),
                       hparams=dict(request["hparams"]))
    conditional = ctx.num_classes is not None
    labels = keras.KerasTensor((2,), dtype="int32")
    for which, build, inputs in (
        ("generator", arch.build_generator, keras.KerasTensor((2, ctx.latent_dim))),
        ("discriminator", arch.build_discriminator, keras.KerasTensor((2, *shape))),
    ):
        try:
            model = build(ctx)
            out = model.compute_output_spec([inputs, labels] if conditional else inputs)
        except Exception as exc:  # noqa: BLE001 - whatever the plugin raised is the outcome
            lines = str(exc).strip().splitlines()
            return {"ok": False, "error": f"building the {which} failed: {type(exc).__name__}: {lines[0] if lines else ''}"}
        got = tuple(out.shape)
        if which == "generator" and got[1:] != shape:
            return {"ok": False, "error": f"the generator makes images of shape {got[1:]}, but the dataset's are {shape}"}
        if which == "discriminator" and got != (2, 1):
            return {"ok": False, "error": f"the discriminator returns shape {got[1:]} per image, but must return one "
                                          f"logit, (1,), for images of shape {shape}"}
    return {"ok": True}


def main() -> int:
    request = json.load(sys.stdin)
    answer_to = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # prints of plugins and libraries must not mix with the answer
    from ganlab.plugin_files import PinnedFile
    from ganlab.registry import Registry
    from ganlab.training.backend import activate_backend

    try:
        activate_backend(request["backend"])
        pins = [PinnedFile.parse(v) for v in request["pinned"]]
        registry = Registry().load(request["plugins_dir"] or "", entry_points=True, pinned=pins)
        outcomes = [probe(registry, r) for r in request["builds"]]
    except GanlabError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    json.dump({"outcomes": outcomes}, answer_to)
    answer_to.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
