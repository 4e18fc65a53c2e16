"""What the scores say, for people: the DVC metrics file and ``report.md``, statements computed, not written."""

from __future__ import annotations

import pandas as pd

from fer_age.contracts import held_out_group
from fer_age.modeling.saliency import bootstrap_difference


def with_ci(table: pd.DataFrame, score: str, digits: int, sep: str = " ") -> list[str]:
    """``score`` of each row as text with its confidence interval, e.g. ``0.833 [0.729, 0.917]``."""
    return [
        f"{v:.{digits}f}{sep}[{lo:.{digits}f}, {hi:.{digits}f}]"
        for v, lo, hi in zip(table[score], table[f"{score}_ci_low"], table[f"{score}_ci_high"])
    ]


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no extra dependency)."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def metrics_dict(gaps: pd.DataFrame, cross_age: pd.DataFrame, n_seeds: int, gains: pd.DataFrame | None = None) -> dict:
    """The headline DVC reads (accuracy): own, other and the gap with its interval per training age group; the
    baseline's and pooled models' score per test age group, worst group and largest gap; each trained model's gain
    over the baseline per test age group, with its interval. The full tables stay in the CSVs (``dvc exp show``
    stays readable)."""
    accuracy = gaps[gaps["score"] == "accuracy"]
    metrics: dict = {"n_seeds": n_seeds, "gap": {}}
    for r in accuracy[accuracy["kind"] == "own_vs_other"].itertuples():
        metrics["gap"][r.train_age_group] = {
            "own": round(r.first_value, 4),
            "other": round(r.second_value, 4),
            "gap": round(r.gap, 4),
            "low": round(r.gap_ci_low, 4),
            "high": round(r.gap_ci_high, 4),
        }
    for kind in ("baseline", "mixed_age"):  # models without one own group: per test group, worst, widest gap
        for name in accuracy.loc[accuracy["kind"] == kind, "train_age_group"].unique():
            part = cross_age[cross_age["train_age_group"] == name]
            scores = dict(zip(part["test_age_group"], part["accuracy"].round(4)))
            worst, best = min(scores.values()), max(scores.values())
            entry = {**scores, "worst": worst, "gap": round(best - worst, 4)}
            if held_out_group(name) in scores:  # leave-one-out: the age group it never saw
                entry["unseen"] = scores[held_out_group(name)]
            metrics.setdefault(kind, {})[name] = entry
    if gains is not None:
        for g in gains[gains["score"] == "accuracy"].itertuples():
            values = {"gain": g.gain, "low": g.gain_ci_low, "high": g.gain_ci_high}
            entry = {k: round(v, 4) for k, v in values.items()}
            metrics.setdefault("baseline_gain", {}).setdefault(g.train_age_group, {})[g.test_age_group] = entry
    return metrics


def points(value: float) -> str:
    """A difference of two scores in percentage points, signed."""
    return f"{value * 100:+.1f}"


def points_with_interval(value: float, low: float, high: float) -> str:
    """A difference and its interval in percentage points, e.g. ``+3.0 points [+1.2, +4.9]``."""
    return f"{points(value)} points [{points(low)}, {points(high)}]"


def answer_paragraph(gaps: pd.DataFrame, cross_age: pd.DataFrame, level: float) -> str:
    """The study's answer in one paragraph: the gap per training group with its interval, the seeds and images
    behind it, and the baseline's gap."""
    accuracy = gaps[gaps["score"] == "accuracy"]
    own = accuracy[accuracy["kind"] == "own_vs_other"]
    if own.empty:
        return "**Answer.** No age group's models were tested both on their own and on another age group."
    parts = [
        f"trained on **{r.train_age_group}** faces, the models score {r.first_value:.1%} on {r.train_age_group} "
        f"test images and {r.second_value:.1%} on the other age groups, a gap of "
        f"{points_with_interval(r.gap, r.gap_ci_low, r.gap_ci_high)} ({r.verdict})"
        for r in own.itertuples()
    ]
    first = own.iloc[0]
    text = (
        "**Answer.** In accuracy, "
        + "; ".join(parts)
        + f". Means over {first.n_seeds} training seed{'s' if first.n_seeds > 1 else ''}; each interval resamples "
        f"the test images and the seeds together and all {first.comparisons} intervals hold together at "
        f"{level:.0%} (Bonferroni: {first.simultaneous_level:.2%} each); a verdict names a gap only where its "
        "interval excludes zero."
    )
    baseline = accuracy[accuracy["kind"] == "baseline"]
    if len(baseline):
        scores = cross_age[cross_age["baseline"]]
        widest = baseline.loc[baseline["gap"].abs().idxmax()]
        text += (
            f" The off-the-shelf {widest.train_age_group} model, trained on none of these images, scores "
            + ", ".join(f"{r.accuracy:.1%} on {r.test_age_group}" for r in scores.itertuples())
            + f": its widest gap, {widest.first} against {widest.second}, is "
            f"{points_with_interval(widest.gap, widest.gap_ci_low, widest.gap_ci_high)} ({widest.verdict})."
        )
    return text


def gap_lines(gaps: pd.DataFrame) -> list[str]:
    """Every gap of the table, both scores, as markdown bullets."""
    lines = []
    for r in gaps.itertuples():
        who = (
            f"{r.train_age_group} models, own against other groups"
            if r.kind == "own_vs_other"
            else f"{r.train_age_group} ({r.kind}), {r.first} against {r.second}"
        )
        spread = f", SD over seeds {r.gap_sd * 100:.1f}" if r.n_seeds > 1 else ""
        lines.append(
            f"- {who}, {r.score}: {r.first_value:.3f} vs {r.second_value:.3f}, gap "
            f"{points_with_interval(r.gap, r.gap_ci_low, r.gap_ci_high)}{spread}: {r.verdict}"
        )
    return lines


def gain_lines(gains: pd.DataFrame, level: float) -> list[str]:
    """The section on the trained models against the off-the-shelf baseline, both scores, as markdown."""
    if gains.empty:
        return []
    first = gains.iloc[0]
    lines = [
        "## Against the off-the-shelf model",
        "",
        f"Each trained model's score minus the off-the-shelf {first.baseline} model's on the same test images. Each "
        "interval is paired (the same image draws for both) and resamples the trained models' seeds; all "
        f"{first.comparisons} hold together at {level:.0%} (Bonferroni: {first.simultaneous_level:.2%} each).",
        "",
    ]
    for r in gains.itertuples():
        who = f"{r.train_age_group} models" if r.kind == "own_group" else f"{r.train_age_group} (mixed-age)"
        spread = f", SD over seeds {r.gain_sd * 100:.1f}" if r.n_seeds > 1 else ""
        changed = ""
        if r.score == "accuracy":  # fixed and broken are answers, the same for both scores
            per_model = ", per model" if r.n_seeds > 1 else ""
            changed = (
                f" ({r.images_fixed:g} of the baseline's errors fixed, {r.images_broken:g} of its right answers "
                f"broken{per_model})"
            )
        lines.append(
            f"- {who} on {r.test_age_group} test images ({r.n_images}), {r.score}: {r.trained_value:.3f} vs "
            f"{r.baseline_value:.3f}, gain "
            f"{points_with_interval(r.gain, r.gain_ci_low, r.gain_ci_high)}{spread}: {r.verdict}{changed}"
        )
    return [*lines, ""]


def report_markdown(
    cross_age: pd.DataFrame,
    gaps: pd.DataFrame,
    models: list[str],
    flagged: list[str],
    level: float,
    gains: pd.DataFrame | None = None,
) -> str:
    """results/report.md: the answer first, then the gaps, the gains over the off-the-shelf model, the cross-age
    table and the flagged models."""
    table = cross_age.assign(
        accuracy_ci=with_ci(cross_age, "accuracy", 3), macro_f1_ci=with_ci(cross_age, "macro_f1", 3)
    )[["train_age_group", "test_age_group", "n_seeds", "n_images", "accuracy_ci", "macro_f1_ci", "degenerate_models"]]
    lines = [
        "# Cross-age generalisation report",
        "",
        answer_paragraph(gaps, cross_age, level),
        "",
        "## Gaps between age groups",
        "",
        *(gap_lines(gaps) or ["- No gap to report."]),
        "",
        *gain_lines(gains if gains is not None else pd.DataFrame(), level),
        "## Scores per training and test age group",
        "",
        f"Models: {', '.join(models)}.",
        f"Accuracy and macro-F1, mean over seeds, with {level:.0%} two-level bootstrap intervals (test images and "
        "seeds resampled together), pooled over the datasets of each cell; n_images counts distinct test images.",
        "",
        markdown_table(table),
    ]
    if flagged:
        lines += ["", "## Flagged models", "", *flagged]
    return "\n".join(lines) + "\n"


def section(
    cells: pd.DataFrame, table: pd.DataFrame, age_groups: list[str], samples: int, level: float, seed: int
) -> str:
    """The report section: per model, the upper-face share per test age group and its difference from the share
    on the model's own group, each with a bootstrap CI over images. A model flagged degenerate at training gets
    its shares but no verdict: where a model that learned nothing looks says nothing about age groups."""
    overall = table[table["emotion"] == "all"]
    lines = [
        "# Where the models look",
        "",
        f"Share of Grad-CAM saliency on the upper face (eyes, brows: the crop's upper half) with {level:.0%} "
        "bootstrap CIs over images; the rest falls on the lower face (nose, mouth). For other age groups, the "
        "difference from the model's own group, with its CI (each group's images resampled).",
        "",
    ]
    for name, part in overall.groupby("model_name", sort=False):
        by_group = part.set_index("test_age_group")
        own_group = part["train_age_group"].iat[0]
        model_cells = cells[cells["model_name"] == name]
        shares = model_cells.groupby("test_age_group")["upper_share"]
        degenerate = model_cells["degenerate"].iat[0]
        flag = f" **degenerate** ({degenerate}): shares only, no verdict" if degenerate else ""
        lines.append(f"- **{name}** (trained on {own_group}){flag}:")
        for group in [g for g in age_groups if g in by_group.index]:
            r = by_group.loc[group]
            text = f"{r.upper_share:.2f} [{r.upper_share_ci_low:.2f}, {r.upper_share_ci_high:.2f}]"
            if group == own_group:
                text += " (own group)"
            elif own_group in by_group.index and not degenerate:
                diff, low, high = bootstrap_difference(
                    shares.get_group(group).to_numpy(), shares.get_group(own_group).to_numpy(), samples, level, seed
                )
                verdict = (
                    "not clearly different"
                    if low <= 0 <= high
                    else "more on the upper face"
                    if low > 0
                    else "more on the lower face"
                )
                text += f"; {diff:+.2f} [{low:+.2f}, {high:+.2f}] against {own_group}: {verdict}"
            lines.append(f"  - on {group} test images: {text}")
    return "\n".join(lines) + "\n"
