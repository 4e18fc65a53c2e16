"""What training minimises: class and age-group weights per image, L2-SP's pull towards the pretrained
weights, GroupDRO's worst-group loss, CORAL's feature alignment and mixup's partners across age groups
(``pool.method``, ``train.l2_sp``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from fer_age.contracts import read_manifest

if TYPE_CHECKING:
    import keras


GROUP_LOSSES = ("groupdro", "coral")  # methods whose loss reads each image's age group (its sample weight)


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn's 'balanced' weight per class (1 for classes absent from ``labels``)."""
    weights = np.ones(n_classes)
    present = np.unique(labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights


def age_group_label(manifests: list[pd.DataFrame], age_groups: list[str]) -> str:
    """The age groups of the training images, in params order, '+'-joined (e.g. ``adult+older``)."""
    present = set().union(*(set(m.loc[m["split"] == "train", "age_group"]) for m in manifests))
    return "+".join(g for g in age_groups if g in present)


def group_indices(split_dirs: list[Path], age_groups: list[str], split: str) -> np.ndarray:
    """The age group of every image of ``split``, as an index into the groups present (in params order); the
    manifest's rows of a split are the rows of its X, split folder after split folder."""
    groups = pd.concat([m.loc[m["split"] == split, "age_group"] for m in map(read_manifest, split_dirs)])
    present = [g for g in age_groups if g in set(groups)]
    return groups.map({g: i for i, g in enumerate(present)}).to_numpy(np.int64)


def example_weights(y: np.ndarray, groups: np.ndarray, class_weights: np.ndarray | None, method: str) -> np.ndarray:
    """Per training image: its class weight, times (``balanced``) its age group's weight, so that every group
    weighs as much in the loss as every other; ``groupdro`` and ``coral`` pass the group index instead (their
    losses read it)."""
    if method in GROUP_LOSSES:
        return groups.astype(np.float32)
    weights = np.ones(len(y)) if class_weights is None else class_weights[y]
    if method == "balanced":
        counts = np.bincount(groups)
        weights = weights * (len(groups) / (len(counts) * counts))[groups]
    return weights


class MixupPartners:
    """Inter-group mixup (Yan et al. 2020; DomainBed's Mixup): each training image of a batch is mixed with an image
    of another age group (any other image where there is one group), ``lam * image + (1 - lam) * partner`` and
    their labels alike, with ``lam ~ Beta(alpha, alpha)`` per image.

    The draws depend only on ``seed`` and the batch's indices, so they are the same however ``tf.data`` orders its
    parallel calls.
    """

    def __init__(self, groups: np.ndarray, alpha: float, seed: int):
        self.alpha, self.seed = alpha, seed
        self.groups = np.asarray(groups)
        everyone = np.arange(len(self.groups))
        self.candidates = {
            g: (others if len(others := np.flatnonzero(self.groups != g)) else everyone) for g in np.unique(self.groups)
        }

    def __call__(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The partner of each image in ``indices`` and its own image's weight ``lam``."""
        rng = np.random.default_rng([self.seed, *np.asarray(indices).tolist()])
        partners = np.array([rng.choice(self.candidates[self.groups[i]]) for i in indices], np.int64)
        return partners, rng.beta(self.alpha, self.alpha, len(indices))


def ema_momentum(ema_epochs: float, n_train: int, batch_size: int) -> float:
    """The optimizer's per-step EMA momentum that averages the weights over about ``ema_epochs`` epochs
    (``1 - 1 / steps``); 0 (no averaging) when ``ema_epochs`` is 0."""
    steps = ema_epochs * -(-n_train // batch_size)
    return 1.0 - 1.0 / steps if steps > 1 else 0.0


def classifier_features(classifier: keras.Model) -> keras.Model:
    """What ``classifier``'s last weighted layer (its classifier proper) reads, per image, averaged over space
    where that is a feature map: DomainBed's featurizer output. It shares ``classifier``'s layers."""
    import keras

    last = next(layer for layer in reversed(classifier.layers) if layer.weights)
    features = last.input
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D(name="classifier_features")(features)
    return keras.Model(classifier.input, features, name=f"{classifier.name}_features")


def group_members(groups, n_groups: int):
    """One-hot age group per image of a batch (images x groups) and the number of images of each group."""
    import keras

    members = keras.ops.one_hot(keras.ops.cast(groups, "int32"), n_groups)
    return members, keras.ops.sum(members, axis=0)


def coral_penalty(features, groups, n_groups: int):
    """CORAL (Sun & Saenko 2016, in DomainBed's form): for each pair of age groups in the batch, the mean squared
    difference of their feature means plus that of their feature covariances, averaged over the pairs whose
    groups both have two images or more (0 where none has)."""
    import keras

    ops = keras.ops
    features = ops.cast(features, "float32")
    members, counts = group_members(groups, n_groups)
    means, covariances = [], []
    for g in range(n_groups):
        member = members[:, g : g + 1]
        mean = ops.sum(member * features, axis=0) / ops.maximum(counts[g], 1.0)
        centred = (features - mean) * member
        means.append(mean)
        covariances.append(ops.matmul(ops.transpose(centred), centred) / ops.maximum(counts[g] - 1.0, 1.0))
    usable = ops.cast(counts > 1, "float32")
    total, pairs = 0.0, 0.0
    for i in range(n_groups):
        for j in range(i + 1, n_groups):
            distance = ops.mean(ops.square(means[i] - means[j])) + ops.mean(ops.square(covariances[i] - covariances[j]))
            total, pairs = total + usable[i] * usable[j] * distance, pairs + usable[i] * usable[j]
    return total / ops.maximum(pairs, 1.0)


def training_model(
    model: keras.Model,
    l2_sp: float,
    n_groups: int,
    dro_step: float,
    class_weights: np.ndarray | None,
    smoothing: float,
    coral: float = 0.0,
    features: keras.Model | None = None,
) -> keras.Model:
    """``model`` (sharing its layers) with the training loss of the method asked for.

    ``l2_sp`` > 0: plus that times the squared distance of the trainable weights from their values now (L2-SP,
    Li et al. 2018: fine-tuning that stays near its start). ``n_groups`` > 0 (the sample weight is then the
    image's age group), with ``dro_step`` > 0: online GroupDRO (Sagawa et al. 2020): each step raises the weight
    of the groups with the higher loss (exponentiated gradient, step ``dro_step``) and minimises the weighted
    sum of the groups' losses; with ``coral`` > 0: the mean class-weighted loss plus ``coral`` times
    ``coral_penalty`` of ``features`` (a model of the same inputs, e.g. ``classifier_features``; called on the
    batch again, so on another augmented draw of it). Validation losses stay plain cross-entropy, comparable
    across methods.
    """
    import keras

    if not l2_sp and not n_groups:
        return model
    if coral and features is None:
        raise ValueError("CORAL needs the model's features")
    ops = keras.ops

    class Fitted(keras.Model):
        def __init__(self, inner: keras.Model):
            super().__init__(inner.inputs, inner.outputs, name=inner.name)
            # by variable path: the trainable set can shrink and grow (train.probe_epochs' head-only epochs)
            self.anchors = {w.path: ops.convert_to_tensor(w.numpy()) for w in self.trainable_weights} if l2_sp else {}
            self.classes = ops.convert_to_tensor(np.ones(1) if class_weights is None else class_weights, "float32")
            self.group_weights = keras.Variable(
                np.full(max(n_groups, 1), 1 / max(n_groups, 1), np.float32), trainable=False
            )

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            if not training:
                return super().compute_loss(x, y, y_pred, None, training)
            if n_groups and coral:
                losses = self.weighted_losses(y, ops.cast(y_pred, "float32"))
                loss = ops.mean(losses) + coral * coral_penalty(features(x, training=True), sample_weight, n_groups)
            elif n_groups:
                loss = self.dro_loss(y, ops.cast(y_pred, "float32"), sample_weight)
            else:
                loss = super().compute_loss(x, y, y_pred, sample_weight, training)
            if l2_sp:
                moved = [ops.sum(ops.square(w - self.anchors[w.path])) for w in self.trainable_weights]
                loss = loss + l2_sp * ops.sum(ops.stack(moved))
            return loss

        def weighted_losses(self, y, y_pred):
            losses = keras.losses.categorical_crossentropy(y, y_pred, label_smoothing=smoothing)
            if class_weights is not None:
                losses = losses * ops.take(self.classes, ops.argmax(y, axis=-1))
            return losses

        def dro_loss(self, y, y_pred, groups):
            losses = self.weighted_losses(y, y_pred)
            members, counts = group_members(groups, n_groups)
            group_losses = ops.sum(members * losses[:, None], axis=0) / ops.maximum(counts, 1.0)
            raised = self.group_weights * ops.exp(dro_step * ops.where(counts > 0, group_losses, 0.0))
            self.group_weights.assign(raised / ops.sum(raised))
            return ops.sum(ops.stop_gradient(self.group_weights) * group_losses)

    return Fitted(model)
