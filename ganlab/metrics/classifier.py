"""The default backbone: the small classifier trained on the data set's own labels (see :mod:`.featurenet`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from ganlab.metrics.featurenet import FeatureNet, FeatureNetConfig, load_or_train
from ganlab.specs import FeatureContext, FeatureSpec

__all__ = ["CLASSIFIER", "ClassifierExtractor", "classifier_features"]


class ClassifierExtractor:
    """The feature net's last hidden layer, as an :class:`ganlab.specs.Extractor`."""

    def __init__(self, net: FeatureNet, data_hash: str) -> None:
        self.net = net
        self._data_hash = data_hash

    def card(self) -> dict[str, Any]:
        config = self.net.config.to_json()
        # The net is trained on the seed's own training split, so its exact weights differ per seed;
        # the card names what the seeds share (data, recipe) so runs differing by seed still compare.
        recipe = hashlib.sha256(f"{self._data_hash}|{json.dumps(config, sort_keys=True)}".encode()).hexdigest()
        hidden = "x".join(str(h) for h in self.net.config.hidden)
        return {
            "backbone": f"classifier-mlp-{hidden}",
            "weights": f"recipe:{recipe[:16]}",
            "resize": f"quantise to uint8, box-downsample to at most {self.net.config.max_side} px",
            "dim": self.net.dim,
            "per_seed": {"feature_net": self.net.info.get("key")},
        }

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.net.features(images)


def classifier_features(config: FeatureNetConfig | None = None) -> FeatureSpec:
    """A FeatureSpec for the classifier backbone with this configuration."""
    config = config or FeatureNetConfig()

    def build(ctx: FeatureContext) -> ClassifierExtractor:
        net = load_or_train(ctx.data.images, ctx.data.labels, ctx.train_idx, ctx.holdout_idx, config,
                            ctx.cache_dir, data_hash=ctx.data_hash)
        return ClassifierExtractor(net, ctx.data_hash)

    return FeatureSpec(
        "classifier",
        "last hidden layer of an MLP classifier trained on the data set's own labels (k-means pseudo-labels without them)",
        build,
    )


#: What the built-in metrics compute on unless told otherwise.
CLASSIFIER = classifier_features()
