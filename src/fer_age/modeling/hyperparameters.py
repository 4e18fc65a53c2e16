"""Training settings resolved once from params and the model's registry entry."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fer_age.config import Config
from fer_age.modeling.selection import worst_group_monitor
from fer_age.registry import ModelSpec, model_spec, preprocessing_mode


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings with the model's own defaults filled in where params say null; the registry entry is
    resolved here, once."""

    spec: ModelSpec
    model: str
    head: str
    img_size: int
    epochs: int
    learning_rate: float
    batch_size: int
    weights: str
    preprocessing: str
    fine_tune_layers: int | None
    probe_epochs: int  # LP-FT: epochs training the head alone before the fine-tuning epochs (0 = off)
    freeze_batchnorm: bool  # False unless the model starts from pretrained weights
    seed: int
    augment: bool
    rotation: float
    zoom: float
    class_weights: bool
    label_smoothing: float
    monitor: str  # pooled models with pool.selection worst_group: the worst age group's score (val_worst_group_*)
    mixed_precision: bool
    interpolation: tuple[float, ...]  # empty unless the model starts as a trained classifier of the study's labels
    l2_sp: float  # 0 unless the model starts from pretrained weights
    start_margin: float  # 0 unless the model starts as a trained classifier of the study's labels
    ema_epochs: float  # weights averaged over about this many epochs (0 = off)
    soup: int  # runs from one start averaged into one model (1 = a single run)
    soup_recipe: str  # greedy | uniform | ensemble
    method: str  # erm | balanced | groupdro | coral | mixup (pooled models: pool.method)
    dro_step: float  # GroupDRO's step size for the group weights
    coral_weight: float  # CORAL's penalty weight (0 unless the method is coral)
    mixup_alpha: float  # mixup's Beta(alpha, alpha) (0 unless the method is mixup)
    early_stopping_patience: int
    reduce_lr_patience: int
    reduce_lr_factor: float
    min_learning_rate: float

    @classmethod
    def resolve(cls, config: Config, seed: int, pooled: bool = False) -> Hyperparameters:
        """The settings of one training run; ``pooled``: a mixed-age model of the pool stage, trained by
        ``pool.method`` and selected as ``pool.selection`` says."""
        spec = model_spec(config.model)
        t = config.train
        method = config.pool.method if pooled else "erm"
        worst_group = pooled and config.pool.selection == "worst_group"
        weights = spec.weights[0] if t.weights == "pretrained" else t.weights
        head = config.head or spec.own_head  # set by the loader; a config built in code may leave it None
        starts_as_classifier = head == "default" and weights != "none"
        return cls(
            spec=spec,
            model=config.model,
            head=head,
            img_size=config.img_size,
            epochs=t.epochs or spec.epochs,
            learning_rate=t.learning_rate or spec.learning_rate,
            batch_size=t.batch_size or spec.batch_size,
            weights=weights,
            preprocessing=preprocessing_mode(spec, t.preprocessing),
            fine_tune_layers=t.fine_tune_layers if t.fine_tune_layers is not None else spec.fine_tune_layers,
            probe_epochs=t.probe_epochs,
            freeze_batchnorm=t.freeze_batchnorm and weights != "none",
            seed=seed,
            augment=t.augment,
            class_weights=t.class_weights,
            rotation=spec.rotation if t.rotation is None else t.rotation,
            zoom=spec.zoom if t.zoom is None else t.zoom,
            label_smoothing=t.label_smoothing,
            monitor=worst_group_monitor(t.monitor) if worst_group else t.monitor,
            mixed_precision=t.mixed_precision,
            interpolation=tuple(t.interpolation) if starts_as_classifier else (),
            l2_sp=t.l2_sp if weights != "none" else 0.0,
            start_margin=t.start_margin if starts_as_classifier else 0.0,
            ema_epochs=t.ema_epochs,
            soup=spec.soup if t.soup is None else t.soup,
            soup_recipe=t.soup_recipe or spec.soup_recipe,
            method=method,
            dro_step=config.pool.dro_step if method == "groupdro" else 0.0,
            coral_weight=config.pool.coral_weight if method == "coral" else 0.0,
            mixup_alpha=config.pool.mixup_alpha if method == "mixup" else 0.0,
            early_stopping_patience=t.early_stopping_patience,
            reduce_lr_patience=t.reduce_lr_patience,
            reduce_lr_factor=t.reduce_lr_factor,
            min_learning_rate=t.min_learning_rate,
        )

    def params(self) -> dict:
        """The settings as MLflow params (the registry entry by its name)."""
        return {k: v for k, v in asdict(self).items() if k != "spec"}
