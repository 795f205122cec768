"""Inception-V3 as a metric backbone: what ``inception_fid`` and ``inception_kid`` compute on.

The network is loaded once per run (weights from Keras's cache, downloaded on
first use; see :mod:`ganlab.metrics.inception_weights`). The real images'
features are the same for every run on a data set and take minutes on a CPU,
so they come from the reference statistics cache
(:mod:`ganlab.metrics.reference_stats`); each evaluation pays only for the
generated images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ganlab.specs import FeatureContext, FeatureSpec

__all__ = ["INCEPTION", "InceptionExtractor", "inception_features"]


class InceptionExtractor:
    """Pool features (2048-d) of an Inception backbone, as an :class:`ganlab.specs.Extractor`."""

    def __init__(self, backbone: Any) -> None:
        self.backbone = backbone

    def card(self) -> dict[str, Any]:
        own = self.backbone.card()
        # A metric card holds backbone, weights and resize; the weights are named and hashed there,
        # so two runs whose weight files differ by one byte are never ranked together.
        return {
            "backbone": own["backbone"],
            "weights": f"{own['weights']} sha256:{own['weights_sha256']}",
            "resize": f"{own['resize']} to {own['input_size']}x{own['input_size']}; {own['quantize']}",
            "dim": own["feature_dim"],
        }

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.backbone.features(images)

    def reference_features(self, images: np.ndarray) -> np.ndarray:
        """Features of real images, from the cache when this data and these weights were seen before.

        All rows are kept (``keep`` = the sample size): set metrics such as FD, KID and
        precision/recall need every real row, not a subsample, and none depends on their order.
        """
        from ganlab.metrics.reference_stats import reference_stats

        return reference_stats(images, self.backbone, keep=len(images)).features


def inception_features(source: str = "auto") -> FeatureSpec:
    """A FeatureSpec for Inception-V3 from ``source`` (``auto``, ``tf-fid`` or ``keras``)."""

    def build(ctx: FeatureContext) -> InceptionExtractor:
        from ganlab.metrics.inception import load_inception

        return InceptionExtractor(load_inception(source))

    return FeatureSpec(
        "inception",
        "Inception-V3 pool features (2048-d): TensorFlow's FID graph where TensorFlow is installed, "
        "else Keras's ImageNet weights (the card names which)",
        build,
    )


#: The backbone the published FID/KID numbers use.
INCEPTION = inception_features()
