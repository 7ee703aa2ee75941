"""Typed experiment configuration, read from YAML with strict key and type checking.

``load_config(path, overrides)`` returns an ``ExperimentConfig``; unknown keys, wrong types and
bad values raise ``ConfigError`` naming the dotted key (``optim.lrr: unknown key``). Overrides
are ``"dotted.key=value"`` strings with YAML values (``optim.lr=3e-4``,
``data.train.0.root=/data/idrid``, ``model.kwargs={width: 0.5}``). ``config_to_dict`` gives the
resolved config (every default filled in) that the run folder keeps as ``config.yaml``;
loading that file again gives the same config. docs/training.md is the key reference.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from drscreen.preprocess import PreprocessConfig
from drscreen.transforms import AugmentationConfig


class ConfigError(ValueError):
    """An invalid experiment configuration; the message names the offending key."""


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset adapter call: ``drscreen.data.load_dataset(name, root, split, **options)``.

    ``drop_labels``: labels of these samples to treat as unknown (``dr_grade``, ``dme_grade``,
    ``lesion_masks``), so that no loss term learns them from this dataset: for example synthetic
    images that should teach the DME and lesion heads but not the DR grade of real photographs.
    """

    name: str
    root: str
    split: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    drop_labels: list[Literal["dr_grade", "dme_grade", "lesion_masks"]] = field(default_factory=list)


@dataclass(frozen=True)
class CacheConfig:
    """Preprocessing cache: prepared (cropped, resized, enhanced) images and masks as files.

    ``dir``: cache folder, shared by runs (entries are keyed by the preprocessing settings and
    the source files' paths, sizes and modification times).
    """

    enabled: bool = True
    dir: str = "runs/cache"


@dataclass(frozen=True)
class FoldConfig:
    """Patient-level k-fold cross-validation (``drscreen.data.patient_kfold``) of the training data.

    ``k``: number of folds, ``None`` for none. Fold ``index`` (0-based) of
    ``patient_kfold(train, k, seed=seed)`` is the test part and the other folds train, so the
    ``k`` runs ``index = 0 ... k-1`` test every training image once (Tian et al. use k = 5).
    """

    k: int | None = None
    index: int = 0
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they become network inputs.

    ``train`` / ``val`` / ``test``: datasets whose samples are concatenated per part. Without
    ``val``, ``val_fraction`` of the training patients are held out (``split_by_patient`` with
    ``split_seed``); 0 trains without validation. ``folds``: cross-validation, the held-out fold
    of the training patients becomes the test part. ``balance_grades``: keep as many training
    images of each DR grade as the rarest grade has (a ``split_seed`` choice; images without a
    grade are all kept), before the validation hold-out. ``preprocess``: the ``Preprocessor``
    settings (``drscreen.preprocess``), training size included. ``augmentation``: training
    augmentation. ``balance_sources``: every training epoch draws as many images from each source
    (``Sample.dataset``), and validation adds per-source metrics (``drscreen.engine.sources``).
    ``lesion_union``: training images whose lesion classes are known only through their union
    (``LESION_UNION``, the ``idrid-seg-subset`` folder) supervise the lesion maps through it;
    needs the ``lesion_union`` loss (``loss.kwargs.lesion_loss``). Validation ignores them.
    """

    train: list[DatasetSpec]
    val: list[DatasetSpec] = field(default_factory=list)
    test: list[DatasetSpec] = field(default_factory=list)
    val_fraction: float = 0.0
    split_seed: int = 0
    folds: FoldConfig = field(default_factory=FoldConfig)
    balance_grades: bool = False
    balance_sources: bool = False
    lesion_union: bool = False
    preprocess: dict[str, Any] = field(default_factory=dict)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)


@dataclass(frozen=True)
class ModelConfig:
    """``drscreen.models.create_model(name, **kwargs)`` with the weights of ``checkpoint``.

    ``tiny``: start from the registry's small CPU configuration (metadata ``tiny``), ``kwargs``
    on top; for smoke tests. ``checkpoint_allow_missing``: the checkpoint may lack some of the
    model's weights (heads added to a trained network), which keep their initial values.
    ``freeze``: names of sub-modules (``encoder``, ``feature_head``, ``dr_head``) whose weights
    stay fixed: no gradient, left out of the optimiser, and in evaluation mode during training
    so that their BatchNorm statistics do not move either. ``dr_decoding``: how the predicted
    DR grade is read from the grade probabilities (``drscreen.grading.decode_grades``: ``argmax``
    or ``expected``), in validation, evaluation and the packed model.
    """

    name: str = "drscreen_effnet"
    kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_allow_missing: bool = False
    tiny: bool = False
    freeze: list[str] = field(default_factory=list)
    dr_decoding: Literal["argmax", "expected"] = "argmax"


@dataclass(frozen=True)
class LossConfig:
    """``drscreen.losses.create_loss(name, **kwargs)``."""

    name: str = "multitask"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser, learning-rate schedule, epochs and batch size.

    ``schedule``: ``constant``; ``cosine`` (from ``lr`` down to ``min_lr`` at the last epoch);
    ``step`` (``lr * gamma ** ((epoch - step_start) // step_size)`` from epoch ``step_start`` on).
    ``warmup_epochs`` (may be fractional) ramp the rate linearly from 0, per iteration.
    ``batch_size`` is per process; the global batch is ``batch_size * world_size``.
    ``grad_clip``: maximum gradient norm, ``None`` for no clipping.
    """

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    schedule: Literal["constant", "cosine", "step"] = "cosine"
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    step_size: int = 30
    gamma: float = 0.1
    step_start: int = 0
    epochs: int = 10
    batch_size: int = 8
    grad_clip: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Loop settings.

    - ``amp``: ``auto`` (bf16 where the GPU supports it, else fp16; fp32 on CPU), ``bf16``,
      ``fp16`` or ``fp32`` (no autocast; YAML would read a bare ``off`` as false).
    - ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun each process uses
      ``cuda:LOCAL_RANK``).
    - ``monitor``: the validation metric that selects ``best.pt`` and drives early stopping
      (names in docs/training.md); ``mode``: ``auto`` minimises names ending in ``loss`` and
      maximises the others. ``monitor_window``: compare the mean of the monitored metric over
      the last N validations of the stage (1: each validation alone); ``best.pt`` holds the
      weights of the validation that ends the best window.
    - ``ema_decay``: keep an exponential moving average of the weights (and BatchNorm
      statistics), ``w_avg <- decay * w_avg + (1 - decay) * w`` after every optimiser step,
      restarted with each stage; validation, ``best.pt`` and the weights a stage hands on are
      the averaged ones. ``None``: no averaging. 0.998 averages over about 500 steps.
    - ``patience``: validations without improvement before a stage stops, ``None``: never.
    - ``eval_every``: validate every N epochs (and always after a stage's last).
    - ``progress``: tqdm bars (rank 0, in a terminal). ``drop_last``: drop an incomplete last
      training batch.
    - ``deterministic``: deterministic GPU kernels (``torch.use_deterministic_algorithms``,
      warning where an operation has none), so that a resumed GPU run matches an uninterrupted
      one; CPU runs are deterministic anyway.
    - ``channels_last``: keep convolution weights (and so activations) in channels-last memory
      order, faster on recent CPUs and on tensor-core GPUs; results are unchanged.
    - ``find_unused_parameters``: let DDP tolerate parameters without gradient (a head whose
      loss term is off); automatic when the model's registry entry declares ``no_grad_params``.
    """

    seed: int = 0
    amp: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    device: str = "auto"
    workers: int = 2
    monitor: str = "dr_qwk"
    monitor_window: int = 1
    ema_decay: float | None = None
    mode: Literal["auto", "max", "min"] = "auto"
    patience: int | None = None
    eval_every: int = 1
    progress: bool = True
    drop_last: bool = True
    deterministic: bool = False
    channels_last: bool = False
    find_unused_parameters: bool = False


@dataclass(frozen=True)
class AlternateConfig:
    """SUNet alternate training. ``phi``: fraction of the training images that keep their lesion
    masks (the others' are hidden, seeded by ``train.seed``); ``None`` keeps every mask."""

    phi: float | None = None


@dataclass(frozen=True)
class PseudoMaskConfig:
    """MTUnet semi-supervised training.

    ``segmentation_epochs``: stage 1 epochs on the images with masks (stage 3 runs
    ``optim.epochs``). ``threshold``: probability above which a sigmoid model's pixel becomes a
    pseudo-mask pixel (softmax models take the arg-max). ``restart``: re-initialise the model
    for stage 3 instead of continuing from stage 1.
    """

    segmentation_epochs: int = 10
    threshold: float = 0.5
    restart: bool = False


@dataclass(frozen=True)
class HookSpec:
    """A registered round hook: ``ROUND_HOOKS.create(name, **kwargs)``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoundsConfig:
    """ELLG iterative rounds: after the base training, ``rounds`` times: run the hooks (which
    may add generated samples), then fine-tune for ``epochs`` epochs with ``optim`` (overrides
    of the top-level ``optim`` keys, e.g. ``{lr: 3.0e-5, schedule: step, step_size: 10}``).
    ``base_stage: false`` skips the base training: the rounds start from ``model.checkpoint``
    (a finished baseline run)."""

    rounds: int = 4
    epochs: int = 30
    optim: dict[str, Any] = field(default_factory=dict)
    hooks: list[HookSpec] = field(default_factory=lambda: [HookSpec("noop")])
    base_stage: bool = True


@dataclass(frozen=True)
class ScheduleConfig:
    """How partially labelled data is used: ``standard``, ``alternate`` (SUNet),
    ``pseudo_masks`` (MTUnet) or ``rounds`` (ELLG); each has its own section."""

    name: Literal["standard", "alternate", "pseudo_masks", "rounds"] = "standard"
    alternate: AlternateConfig = field(default_factory=AlternateConfig)
    pseudo_masks: PseudoMaskConfig = field(default_factory=PseudoMaskConfig)
    rounds: RoundsConfig = field(default_factory=RoundsConfig)


@dataclass(frozen=True)
class RunConfig:
    """The run folder is ``<dir>/<name>``."""

    name: str = "default"
    dir: str = "runs"

    @property
    def path(self) -> Path:
        return Path(self.dir) / self.name


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training or evaluation run needs."""

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        _check_values(self)


#: Dataclasses built through another constructor than their ``__init__``.
_CONSTRUCTORS: dict[type, Any] = {AugmentationConfig: AugmentationConfig.from_preset}


def load_config(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read the YAML file at ``path``, apply ``overrides`` and validate."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return config_from_dict(raw, overrides)


def config_from_dict(raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Validate a plain mapping (as read from YAML) after applying ``overrides``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping, got {type(raw).__name__}")
    for override in overrides:
        raw = apply_override(raw, override)
    return build_dataclass(ExperimentConfig, raw, "")


def apply_override(raw: dict[str, Any], override: str) -> dict[str, Any]:
    """A copy of ``raw`` with ``"a.b.c=value"`` set (``value`` parsed as YAML, list items by index)."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r} must look like key.path=value")
    return set_value(raw, key, yaml.safe_load(text) if text.strip() else None)


def set_value(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``raw`` with the dotted ``key`` (list items by index) set to ``value``;
    missing mappings on the way are created."""
    root = _copy(raw)
    node: Any = root
    parts = key.strip().split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{where}: no list item {part!r} (the list has {len(node)})")
            index: int | str = int(part)
        elif isinstance(node, dict):
            index = part
        else:
            raise ConfigError(f"{where}: cannot descend into a {type(node).__name__}")
        if last:
            node[index] = _copy(value)
        else:
            if isinstance(node, dict) and node.get(index) is None:
                node[index] = {}
            node = node[index]
    return root


def config_to_dict(config: Any) -> Any:
    """Plain YAML-ready form of a config (dataclasses to dicts, tuples to lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, dict):
        return {key: config_to_dict(value) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return [config_to_dict(value) for value in config]
    return config


def save_config(config: ExperimentConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved ``config`` as YAML."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False), encoding="utf-8")


def optim_with(base: OptimConfig, overrides: dict[str, Any], where: str) -> OptimConfig:
    """``base`` with ``overrides`` (a partial ``optim`` mapping) applied and validated."""
    return build_dataclass(OptimConfig, {**config_to_dict(base), **overrides}, where)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def build_dataclass(cls: type, raw: Any, where: str) -> Any:
    """Instantiate dataclass ``cls`` from mapping ``raw``, checking keys and types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{_join(where, str(key))}: unknown key{hint}; known: {', '.join(known)}")
    missing = [
        f.name for f in dataclasses.fields(cls)
        if f.name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]  # fmt: skip
    if missing:
        raise ConfigError(f"{_join(where, missing[0])}: required key is missing")
    values = {key: _convert(hints[key], value, _join(where, key)) for key, value in raw.items()}
    try:
        return _CONSTRUCTORS.get(cls, cls)(**values)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{where or 'config'}: {error}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    """``value`` checked (and minimally coerced) against type ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(option, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {hint}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], item, f"{where}.{i}") for i, item in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, item, f"{where}.{i}") for i, (a, item) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        # YAML 1.1 reads "1e-3" (no dot) as a string: accept any number-like text.
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {hint}")  # pragma: no cover - schema bug


def _check_values(config: ExperimentConfig) -> None:
    """Range checks that types cannot express."""
    folds = config.data.folds
    checks = [
        ("data.train", len(config.data.train) > 0, "give at least one training dataset"),
        ("data.val_fraction", 0.0 <= config.data.val_fraction < 1.0, "must be in [0, 1)"),
        ("optim.lr", config.optim.lr > 0, "must be > 0"),
        ("optim.epochs", config.optim.epochs >= 1, "must be >= 1"),
        ("optim.batch_size", config.optim.batch_size >= 1, "must be >= 1"),
        ("optim.step_size", config.optim.step_size >= 1, "must be >= 1"),
        ("optim.warmup_epochs", config.optim.warmup_epochs >= 0, "must be >= 0"),
        ("optim.grad_clip", config.optim.grad_clip is None or config.optim.grad_clip > 0, "must be > 0"),
        ("train.workers", config.train.workers >= 0, "must be >= 0"),
        ("train.eval_every", config.train.eval_every >= 1, "must be >= 1"),
        ("train.monitor_window", config.train.monitor_window >= 1, "must be >= 1"),
        ("train.ema_decay", config.train.ema_decay is None or 0.0 < config.train.ema_decay < 1.0, "must be in (0, 1)"),
        ("train.patience", config.train.patience is None or config.train.patience >= 1, "must be >= 1"),
        ("schedule.alternate.phi", _in_unit(config.schedule.alternate.phi), "must be in (0, 1]"),
        ("schedule.pseudo_masks.segmentation_epochs", config.schedule.pseudo_masks.segmentation_epochs >= 1,
         "must be >= 1"),
        ("schedule.pseudo_masks.threshold", 0.0 < config.schedule.pseudo_masks.threshold < 1.0, "must be in (0, 1)"),
        ("schedule.rounds.rounds", config.schedule.rounds.rounds >= 1, "must be >= 1"),
        ("schedule.rounds.epochs", config.schedule.rounds.epochs >= 1, "must be >= 1"),
        ("data.folds.k", folds.k is None or folds.k >= 2, "must be >= 2 (or null for no cross-validation)"),
        ("data.folds.index", folds.k is None or 0 <= folds.index < folds.k, "must be in [0, k)"),
        ("data.test", folds.k is None or not config.data.test,
         "must be empty with data.folds: the held-out fold is the test part"),
    ]  # fmt: skip
    for key, ok, message in checks:
        if not ok:
            raise ConfigError(f"{key}: {message}")
    try:
        PreprocessConfig.from_dict(config.data.preprocess)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"data.preprocess: {error}") from None
    if config.schedule.name == "rounds":
        optim_with(config.optim, config.schedule.rounds.optim, "schedule.rounds.optim")


def _in_unit(value: float | None) -> bool:
    return value is None or 0.0 < value <= 1.0


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
