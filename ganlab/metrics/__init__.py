"""Offline GAN metrics: Fréchet distance and KID on a small feature net trained per dataset.

numpy and scikit-learn only, so scores are the same on every Keras backend.
"""

from ganlab.metrics.distances import frechet_distance, kid
from ganlab.metrics.evaluator import Evaluator
from ganlab.metrics.featurenet import FeatureNetConfig

__all__ = ["Evaluator", "FeatureNetConfig", "frechet_distance", "kid"]
