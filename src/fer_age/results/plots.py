"""Figures written by the pipeline (never by notebooks)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def wrapped(name: str, width: int = 24) -> str:
    """A file name on lines of at most ``width`` characters (whole, never cut)."""
    return "\n".join(name[i : i + width] for i in range(0, len(name), width))


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _grid(n: int, max_cols: int, cell: tuple[float, float]) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure with ``n`` panels in rows of at most ``max_cols``; the spare panels are hidden."""
    cols = min(n, max_cols)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cell[0] * cols, cell[1] * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def plot_history(history: pd.DataFrame, title: str, path: Path, kept_epoch: int, monitor: str = "val_macro_f1") -> None:
    """Accuracy, loss and macro-F1 curves, train vs validation, per epoch, with the epoch whose weights were kept;
    the panel of the monitored metric (what selection used) says so."""
    metrics = [m for m in ("accuracy", "loss", "macro_f1") if m in history and f"val_{m}" in history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        ax.plot(history["epoch"], history[metric], marker="o", label="train")
        ax.plot(history["epoch"], history[f"val_{metric}"], marker="o", label="validation")
        ax.axvline(
            kept_epoch,
            color="grey",
            linestyle="--",
            label=f"kept: epoch {kept_epoch}" + (" (before training)" if kept_epoch == 0 else ""),
        )
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", "-"))
        if monitor == f"val_{metric}":
            ax.set_title(f"{monitor}: monitored (selection)", fontsize=10)
        ax.legend()
    fig.suptitle(title)
    _save(fig, path)


def plot_heatmap(
    matrix: pd.DataFrame,
    title: str,
    path: Path,
    annotations: pd.DataFrame | None = None,
    axis_titles: tuple[str, str] = ("training age group", "test age group"),
    flagged: pd.DataFrame | None = None,
) -> None:
    """A train x test heatmap of a score in [0, 1], each cell annotated; ``flagged`` cells (True) are hatched
    and say "degenerate" (a model that predicts one class)."""
    fig, ax = plt.subplots(figsize=(2.4 + 1.5 * matrix.shape[1], 1.6 + 1.0 * matrix.shape[0]))
    image = ax.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=30, ha="right")
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    ax.set_xlabel(axis_titles[1])
    ax.set_ylabel(axis_titles[0])
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            text = annotations.iat[i, j] if annotations is not None else f"{matrix.iat[i, j]:.2f}"
            if flagged is not None and bool(flagged.iat[i, j]):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="red"))
                text = f"{text}\ndegenerate"
            dark = matrix.iat[i, j] < 0.6  # viridis is dark at the low end
            ax.text(j, i, text, ha="center", va="center", color="white" if dark else "black", fontsize=8)
    fig.colorbar(image, ax=ax, label="accuracy")
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def plot_recall_by_emotion(table: pd.DataFrame, path: Path) -> None:
    """One panel per training group: recall of each emotion (rows) on each test age group (columns)."""
    groups = list(table["train_age_group"].unique())
    fig, axes = _grid(len(groups), 3, (3.6, 3.2))
    for ax, group in zip(axes, groups):
        part = table[table["train_age_group"] == group]
        matrix = part.pivot(index="emotion", columns="test_age_group", values="recall").reindex(
            index=part["emotion"].unique(), columns=part["test_age_group"].unique()
        )
        image = ax.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=30, ha="right")
        ax.set_yticks(range(matrix.shape[0]), matrix.index)
        ax.set_xlabel("test age group")
        ax.set_title(f"trained on {group}", fontsize=10)
        for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=axes, label="recall (mean over seeds)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_confusion_grid(matrices: dict[str, np.ndarray], labels: list[str], path: Path) -> None:
    """One confusion matrix (rows true, columns predicted) per train/test pair, coloured by the fraction of each
    true class (rows sum to 1) and annotated with that fraction and the count."""
    fig, axes = _grid(len(matrices), 3, (4.2, 4))
    image = None
    for ax, (title, counts) in zip(axes, matrices.items()):
        fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        for (i, j), value in np.ndenumerate(fractions):
            colour = "white" if value > 0.5 else "black"  # Blues is dark at the high end
            ax.text(j, i, f"{value:.2f}\n({int(counts[i, j])})", ha="center", va="center", fontsize=7, color=colour)
        ax.set_title(title, fontsize=9)
    fig.supxlabel("predicted")
    fig.supylabel("true")
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes, label="fraction of the true class (count)", shrink=0.8)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_gallery(images: list[np.ndarray], captions: list[str], path: Path) -> None:
    """A grid of misclassified test faces, each captioned with the model, 'true → predicted' and the file."""
    fig, axes = _grid(max(len(images), 1), 5, (2.8, 3.4))
    for ax, image, caption in zip(axes, images, captions):
        ax.imshow(image)
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
    if not images:
        axes[0].text(0.5, 0.5, "no misclassified test images", ha="center")
        axes[0].axis("off")
    _save(fig, path)


def _overlay(ax: plt.Axes, image: np.ndarray, saliency: np.ndarray) -> None:
    ax.imshow(image.astype(np.uint8))
    ax.imshow(saliency, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_cam_grid(
    images: np.ndarray,
    maps: np.ndarray,
    cells: pd.DataFrame,
    age_groups: list[str],
    labels: list[str],
    title: str,
    path: Path,
) -> None:
    """Mean Grad-CAM per test age group (rows) and emotion (columns), over the mean face of that cell."""
    groups = [g for g in age_groups if g in set(cells["test_age_group"])]
    fig, axes = plt.subplots(len(groups), len(labels), figsize=(2.1 * len(labels), 2.3 * len(groups)), squeeze=False)
    for i, group in enumerate(groups):
        for j, label in enumerate(labels):
            ax = axes[i, j]
            chosen = ((cells["test_age_group"] == group) & (cells["label"] == j)).to_numpy()
            if not chosen.any():
                ax.axis("off")
                continue
            _overlay(ax, images[chosen].mean(axis=0), maps[chosen].mean(axis=0))
            ax.set_title(f"{label} (n={chosen.sum()}, {cells['correct'][chosen].mean():.0%} right)", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"test: {group}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def plot_cam_gallery(
    images: np.ndarray, maps: np.ndarray, cells: pd.DataFrame, labels: list[str], path: Path, limit: int = 24
) -> None:
    """Single test images with their Grad-CAM maps, captioned true → predicted, right ✓ or wrong ✗."""
    shown = min(limit, len(images))
    fig, axes = _grid(shown, 5, (2.8, 3.4))
    for ax, k in zip(axes, np.linspace(0, len(images) - 1, shown).astype(int)):
        row = cells.iloc[k]
        _overlay(ax, images[k], maps[k])
        mark = "✓" if row["correct"] else "✗"
        ax.set_title(
            f"{mark} {row['test_age_group']}: {labels[row['label']]} → {labels[row['predicted']]}\n"
            + wrapped(Path(row["source"]).name),
            fontsize=8,
            color="black" if row["correct"] else "red",
        )
    _save(fig, path)
