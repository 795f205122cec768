"""GAN metrics as plugins: the suite that runs them, their cards, and the built-in distances.

Fréchet distance and KID are numpy and scikit-learn only, so their scores are
the same on every Keras backend; the k-NN metrics run on ``keras.ops``.
:func:`reported_names` says which score names an experiment reports.
"""

from ganlab.metrics.classifier import CLASSIFIER
from ganlab.metrics.distances import frechet_distance, kid
from ganlab.metrics.evaluator import Evaluator
from ganlab.metrics.featurenet import FeatureNetConfig
from ganlab.metrics.selection import reported_names
from ganlab.metrics.suite import MetricSuite

__all__ = ["CLASSIFIER", "Evaluator", "FeatureNetConfig", "MetricSuite", "frechet_distance", "kid", "reported_names"]
