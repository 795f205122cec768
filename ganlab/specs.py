"""The objects plugins hand to ganlab: the public contract of every plugin kind.

A plugin builds one of these spec objects and passes it to the ``register``
callback its hook receives (see :mod:`ganlab.hookspecs`). Specs are plain,
frozen dataclasses: the engine owns the registry, plugins only describe.

Calling conventions, for every Keras backend:

* an unconditional generator maps ``z`` of shape ``(batch, latent_dim)`` to
  images ``(batch, H, W, C)`` in ``[-1, 1]``; a conditional one takes
  ``[z, labels]`` with integer labels of shape ``(batch,)``;
* an unconditional discriminator maps images to logits ``(batch, 1)``; a
  conditional one takes ``[images, labels]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ganlab.errors import PluginValidationError
from ganlab.params import Param

if TYPE_CHECKING:  # keras is imported lazily: listing plugins must not start a backend
    import keras

__all__ = [
    "ArchitectureSpec",
    "AugmentContext",
    "AugmentationSpec",
    "BuildContext",
    "DataInfo",
    "DatasetSpec",
    "Extractor",
    "FeatureContext",
    "FeatureSpec",
    "ImageData",
    "LossSpec",
    "MetricContext",
    "MetricSpec",
    "RegularizerContext",
    "TrainingDefaults",
]

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS:
        raise PluginValidationError(f"{kind} name {name!r} must be lower-case letters, digits, '-' or '_'")


def _check_params(kind: str, name: str, params: tuple[Param, ...]) -> tuple[Param, ...]:
    params = tuple(params)
    seen: set[str] = set()
    for p in params:
        if not isinstance(p, Param):
            raise PluginValidationError(f"{kind} {name!r}: params must be ganlab.Param objects, got {type(p).__name__}")
        if p.name in seen:
            raise PluginValidationError(f"{kind} {name!r}: hyperparameter {p.name!r} declared twice")
        seen.add(p.name)
    return params


# ----------------------------------------------------------------- architectures


@dataclass(frozen=True)
class BuildContext:
    """What an architecture needs to size its networks.

    Attributes:
        image_shape: ``(H, W, C)`` of the dataset's images.
        num_classes: number of classes, or ``None`` for unconditional training.
        latent_dim: length of the noise vector ``z``.
        hparams: the architecture's resolved hyperparameters (defaults filled).
    """

    image_shape: tuple[int, int, int]
    num_classes: int | None
    latent_dim: int
    hparams: Mapping[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return self.image_shape[0]

    @property
    def width(self) -> int:
        return self.image_shape[1]

    @property
    def channels(self) -> int:
        return self.image_shape[2]


@dataclass(frozen=True)
class ArchitectureSpec:
    """A generator/discriminator pair.

    Args:
        name: registry key, e.g. ``"dcgan"``.
        description: one line for ``ganlab plugins``.
        build_generator: ``ctx -> keras.Model`` (see module docstring for the call signature).
        build_discriminator: ``ctx -> keras.Model`` returning one logit per image.
        params: declared hyperparameters.
        reference: the paper, e.g. ``"Radford et al. 2016, arXiv:1511.06434"``.
        conditional: the networks take class labels (the dataset must have labels).
        check_shape: optional ``(H, W, C) -> None | str``; returns why this
            architecture cannot handle that image shape, checked at enqueue time.
    """

    name: str
    description: str
    build_generator: Callable[[BuildContext], keras.Model]
    build_discriminator: Callable[[BuildContext], keras.Model]
    params: tuple[Param, ...] = ()
    reference: str = ""
    conditional: bool = False
    check_shape: Callable[[tuple[int, int, int]], str | None] | None = None

    kind = "architecture"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        object.__setattr__(self, "params", _check_params(self.kind, self.name, self.params))
        if not callable(self.build_generator) or not callable(self.build_discriminator):
            raise PluginValidationError(f"architecture {self.name!r}: build_generator and build_discriminator must be callables")


# ---------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class ImageData:
    """What a dataset's ``load`` returns.

    Args:
        images: uint8 array ``(N, H, W, C)`` with C in {1, 3}; may be a ``np.memmap``.
        labels: integer class ids ``(N,)``, or ``None`` for an unlabelled set.
        class_names: names for the label ids, if known.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        imgs = self.images
        if not isinstance(imgs, np.ndarray) or imgs.dtype != np.uint8 or imgs.ndim != 4:
            got = f"{getattr(imgs, 'dtype', type(imgs).__name__)} array of shape {getattr(imgs, 'shape', '?')}"
            raise TypeError(f"dataset images must be a uint8 array (N, H, W, C), got {got}")
        if imgs.shape[-1] not in (1, 3):
            raise TypeError(f"dataset images must have 1 or 3 channels, got shape {imgs.shape}")
        if len(imgs) == 0:
            raise TypeError("dataset has no images")
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != (len(imgs),) or not np.issubdtype(labels.dtype, np.integer):
                raise TypeError(f"dataset labels must be integers of shape ({len(imgs)},), got {labels.dtype} {labels.shape}")
            if labels.min() < 0:
                raise TypeError("dataset labels must be >= 0")
            object.__setattr__(self, "labels", labels.astype(np.int32, copy=False))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int | None:
        if self.labels is None:
            return None
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.labels.max()) + 1

    def info(self) -> DataInfo:
        return DataInfo(self.image_shape, self.num_classes, len(self.images))


@dataclass(frozen=True)
class DataInfo:
    """Shape facts about a dataset, known without loading every image."""

    image_shape: tuple[int, int, int]
    num_classes: int | None
    num_examples: int


@dataclass(frozen=True)
class DatasetSpec:
    """A source of training images.

    Args:
        name: registry key, e.g. ``"digits"``.
        description: one line for ``ganlab plugins``.
        load: ``params -> ImageData``; raise :class:`ganlab.DatasetUnavailable`
            with a one-line fix when the data is not on this machine.
        params: declared parameters (e.g. ``path``, ``size``).
        reference: where the data comes from.
        describe: optional cheap ``params -> DataInfo`` used to validate at
            enqueue time without loading every image; raises
            ``DatasetUnavailable`` like ``load``. Without it, ``load`` is used.
    """

    name: str
    description: str
    load: Callable[[Mapping[str, Any]], ImageData]
    params: tuple[Param, ...] = ()
    reference: str = ""
    describe: Callable[[Mapping[str, Any]], DataInfo] | None = None

    kind = "dataset"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        object.__setattr__(self, "params", _check_params(self.kind, self.name, self.params))
        if not callable(self.load):
            raise PluginValidationError(f"dataset {self.name!r}: load must be a callable")


# ------------------------------------------------------------------------ losses


@dataclass(frozen=True)
class TrainingDefaults:
    """Training settings a loss recommends; the user may override each one."""

    n_critic: int = 1
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999


@dataclass
class RegularizerContext:
    """Handed to a loss's regulariser inside the discriminator's step.

    Attributes:
        real: real images ``(B, H, W, C)``.
        fake: generated images, same shape.
        labels: class labels or ``None``.
        discriminator: ``images -> logits`` with labels already bound.
        input_gradient: ``(fn, x) -> d sum(fn(x)) / dx``, implemented by the
            engine for the active backend so plugins stay backend-free.
        seed: a stateless seed for ``keras.random`` calls (e.g. interpolation).
    """

    real: Any
    fake: Any
    labels: Any
    discriminator: Callable[[Any], Any]
    input_gradient: Callable[[Callable[[Any], Any], Any], Any]
    seed: Any = None


@dataclass(frozen=True)
class LossSpec:
    """An adversarial objective.

    Args:
        name: registry key, e.g. ``"hinge"``.
        description: one line for ``ganlab plugins``.
        discriminator_loss: ``(real_logits, fake_logits, params) -> scalar``.
        generator_loss: ``(fake_logits, params) -> scalar``.
        params: declared parameters (e.g. ``gp_weight``).
        reference: the paper.
        regularizer: optional ``(RegularizerContext, params) -> scalar`` added
            to the discriminator loss (gradient penalty, R1).
        defaults: recommended training settings.
    """

    name: str
    description: str
    discriminator_loss: Callable[[Any, Any, Mapping[str, Any]], Any]
    generator_loss: Callable[[Any, Mapping[str, Any]], Any]
    params: tuple[Param, ...] = ()
    reference: str = ""
    regularizer: Callable[[RegularizerContext, Mapping[str, Any]], Any] | None = None
    defaults: TrainingDefaults = field(default_factory=TrainingDefaults)

    kind = "loss"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        object.__setattr__(self, "params", _check_params(self.kind, self.name, self.params))
        if not callable(self.discriminator_loss) or not callable(self.generator_loss):
            raise PluginValidationError(f"loss {self.name!r}: discriminator_loss and generator_loss must be callables")


# ------------------------------------------------------------------ augmentations


@dataclass
class AugmentContext:
    """Handed to an augmentation each time it runs inside the compiled step.

    Attributes:
        params: the augmentation's resolved hyperparameters.
        p: the adaptive probability, a float32 scalar tensor in ``[0, 1]``, when
            the spec has ``adapt``; ``None`` otherwise.
        next_seed: ``() -> seed`` for one ``keras.random`` call; every call
            returns a new seed derived from the step's, so a run (and a resumed
            run) draws the same numbers on every backend, inside ``jit`` too.
    """

    params: Mapping[str, Any]
    next_seed: Callable[[], Any]
    p: Any = None


@dataclass(frozen=True)
class AugmentationSpec:
    """A differentiable augmentation applied to every batch the discriminator sees.

    The engine applies ``apply`` to the real and to the generated images
    (separately, each with its own random draws) before the discriminator in
    both networks' updates, inside the compiled step; gradients flow through it
    to the generator. Samples and metrics never go through it.

    Args:
        name: registry key, e.g. ``"diffaugment"``.
        description: one line for ``ganlab plugins``.
        apply: ``(images, AugmentContext) -> images`` with the same shape and
            dtype; images are ``(B, H, W, C)`` in ``[-1, 1]``. Written in
            ``keras.ops`` and ``keras.random`` only, so it runs on every backend.
        params: declared hyperparameters (strengths, probabilities).
        reference: the paper.
        check: optional ``params -> None | str``; returns why these values
            cannot work (e.g. an unknown policy name), checked at enqueue time.
        adapt: optional ``(p, real_logits, params) -> new p`` in ``keras.ops``;
            when given, the engine keeps ``p`` as training state (starting at
            ``initial_p(params)``, or 0 without it), updates it after each discriminator update,
            saves it in checkpoints and logs it as ``augment/p``.
        initial_p: ``params -> float``, the starting ``p`` of an adaptive spec.
    """

    name: str
    description: str
    apply: Callable[[Any, AugmentContext], Any]
    params: tuple[Param, ...] = ()
    reference: str = ""
    check: Callable[[Mapping[str, Any]], str | None] | None = None
    adapt: Callable[[Any, Any, Mapping[str, Any]], Any] | None = None
    initial_p: Callable[[Mapping[str, Any]], float] | None = None

    kind = "augmentation"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        object.__setattr__(self, "params", _check_params(self.kind, self.name, self.params))
        if not callable(self.apply):
            raise PluginValidationError(f"augmentation {self.name!r}: apply must be a callable")
        for what in ("check", "adapt", "initial_p"):
            value = getattr(self, what)
            if value is not None and not callable(value):
                raise PluginValidationError(f"augmentation {self.name!r}: {what} must be a callable or None")

    @property
    def adaptive(self) -> bool:
        return self.adapt is not None


# ------------------------------------------------------------------------ metrics


@dataclass(frozen=True)
class FeatureContext:
    """What a feature extractor may use to get ready, once per run.

    Attributes:
        data: the whole dataset (a classifier backbone trains on it; a fixed
            network such as Inception ignores it).
        train_idx: the training split (real reference samples come from its head).
        holdout_idx: the held-out split (the real-vs-real floor).
        data_hash: sha256 of the images and labels.
        seed: the experiment seed that cut the split.
        cache_dir: where backbones cache weights and statistics (``None``: their default).
    """

    data: ImageData
    train_idx: np.ndarray
    holdout_idx: np.ndarray
    data_hash: str
    seed: int
    cache_dir: str | None = None


@runtime_checkable
class Extractor(Protocol):
    """A backbone ready to embed images: what :attr:`FeatureSpec.build` returns."""

    def card(self) -> dict[str, Any]:
        """``backbone``, ``weights`` (a hash of the weights) and ``resize`` (how images reach the backbone's input)."""

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """``(N, H, W, C)`` float in ``[-1, 1]`` (or uint8) -> ``(N, D)`` features."""

    # Optional: ``reference_features(images) -> (N, D)`` for the real and held-out images, where
    # the extractor keeps them cached across runs (Inception does); without it they are computed.


@dataclass(frozen=True)
class FeatureSpec:
    """A feature extractor (backbone) that metrics name in :attr:`MetricSpec.features`.

    Metrics naming the same extractor (equal ``name``) share one extraction of
    the real, held-out and generated images per evaluation.

    Args:
        name: key shared by the metrics using it, e.g. ``"classifier"`` or ``"inception"``.
        description: one line for ``ganlab plugins show``.
        build: ``FeatureContext -> Extractor``, called once per run (load or train weights here).
    """

    name: str
    description: str
    build: Callable[[FeatureContext], Extractor]

    def __post_init__(self) -> None:
        _check_name("feature extractor", self.name)
        if not callable(self.build):
            raise PluginValidationError(f"feature extractor {self.name!r}: build must be a callable")


@dataclass
class MetricContext:
    """Handed to a metric's ``compute`` with each pair of feature sets.

    Attributes:
        params: the metric's resolved parameters (declared defaults filled in).
        seed: the experiment seed (for subsampling, e.g. KID's subsets).
        shared: a dict living for one comparison of two feature sets; metrics
            that need the same intermediate (k-NN distances) keep it here so it
            is computed once.
        reference: a dict living as long as the real reference features (the
            whole run): statistics of the real side (FD's mean and covariance)
            are kept here and reused by every evaluation.
    """

    params: Mapping[str, Any]
    seed: int = 0
    shared: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    """A score of generated images against real ones, computed on features.

    Args:
        name: registry key and the name in ``train.metrics``, e.g. ``"fd"``.
        description: one line for ``ganlab plugins``.
        outputs: the scalar names ``compute`` returns, e.g. ``("precision", "recall")``;
            ``compute`` may also return ``<output>_std`` spreads.
        features: the extractor whose features ``compute`` receives.
        compute: ``(real, fake, MetricContext) -> {output: float}``; ``real``
            and ``fake`` are ``(N, D)`` float arrays.
        params: declared parameters (their values go into the metric card).
        reference: the paper.
        lower_is_better: every output improves downwards (distances) or upwards (precision).
        version: bump when ``compute`` changes what a score means; part of the card.
        min_samples: the fewest real and generated samples the metric is meaningful on;
            an experiment with a smaller ``eval_samples`` is refused at enqueue.
        card_notes: optional ``(params, n_real, n_fake) -> dict`` of what a
            parameter's automatic value became (e.g. KID's subset size), put on the card.
    """

    name: str
    description: str
    outputs: tuple[str, ...]
    features: FeatureSpec
    compute: Callable[[Any, Any, MetricContext], Mapping[str, float]]
    params: tuple[Param, ...] = ()
    reference: str = ""
    lower_is_better: bool = True
    version: int = 1
    min_samples: int = 2
    card_notes: Callable[[Mapping[str, Any], int, int | None], Mapping[str, Any]] | None = None

    kind = "metric"

    def __post_init__(self) -> None:
        _check_name(self.kind, self.name)
        object.__setattr__(self, "params", _check_params(self.kind, self.name, self.params))
        outputs = tuple(self.outputs)
        if not outputs or not all(isinstance(o, str) and o and set(o) <= _NAME_CHARS for o in outputs):
            raise PluginValidationError(f"metric {self.name!r}: outputs must be non-empty lower-case names, got {outputs!r}")
        object.__setattr__(self, "outputs", outputs)
        if not isinstance(self.features, FeatureSpec):
            raise PluginValidationError(f"metric {self.name!r}: features must be a ganlab.FeatureSpec")
        if not callable(self.compute):
            raise PluginValidationError(f"metric {self.name!r}: compute must be a callable")
        if not isinstance(self.min_samples, int) or self.min_samples < 2:
            raise PluginValidationError(f"metric {self.name!r}: min_samples must be an int >= 2")
        if not isinstance(self.version, int) or self.version < 1:
            raise PluginValidationError(f"metric {self.name!r}: version must be an int >= 1")
