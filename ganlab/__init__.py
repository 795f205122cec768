"""ganlab: plugin-based GAN experiments on Keras 3, queued and compared."""

from ganlab.errors import (
    ConfigError,
    DatasetUnavailable,
    GanlabError,
    PluginError,
    PluginValidationError,
)
from ganlab.hookspecs import hookimpl
from ganlab.params import Param
from ganlab.specs import (
    ArchitectureSpec,
    AugmentationSpec,
    AugmentContext,
    BuildContext,
    DataInfo,
    DatasetSpec,
    FeatureContext,
    FeatureSpec,
    ImageData,
    LossSpec,
    MetricContext,
    MetricSpec,
    RegularizerContext,
    TrainingDefaults,
)

__version__ = "0.1.0"

__all__ = [
    "ArchitectureSpec",
    "AugmentContext",
    "AugmentationSpec",
    "BuildContext",
    "ConfigError",
    "DataInfo",
    "DatasetSpec",
    "DatasetUnavailable",
    "FeatureContext",
    "FeatureSpec",
    "GanlabError",
    "ImageData",
    "LossSpec",
    "MetricContext",
    "MetricSpec",
    "Param",
    "PluginError",
    "PluginValidationError",
    "RegularizerContext",
    "TrainingDefaults",
    "hookimpl",
    "__version__",
]
