"""What the scores say, for people: the DVC metrics file and ``report.md``, statements computed, not written."""

from __future__ import annotations

import pandas as pd

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


def metrics_dict(cross_age: pd.DataFrame, heads: pd.DataFrame) -> dict:
    """The slim metrics file DVC reads: accuracy and macro-F1 per cross-age cell, and the headline.

    CIs, counts and the per-dataset cells stay in the CSVs and plots (``dvc exp show`` stays readable).
    """
    return {
        "cross_age": {
            f"{r.train_age_group}_on_{r.test_age_group}": {
                "accuracy": round(r.accuracy, 4),
                "macro_f1": round(r.macro_f1, 4),
            }
            for r in cross_age.itertuples()
        },
        "headline": {
            r.train_age_group: {"own": round(r.own_group_accuracy, 4), "other": round(r.other_group_accuracy, 4)}
            for r in heads.itertuples()
        },
    }


def compare(a_low: float, a_high: float, b_low: float, b_high: float) -> str:
    """How interval a stands against interval b."""
    if a_low > b_high:
        return "higher (the CIs do not overlap)"
    if a_high < b_low:
        return "lower (the CIs do not overlap)"
    return "not clearly different (the CIs overlap)"


def headline_lines(heads: pd.DataFrame) -> list[str]:
    lines = []
    for r in heads.itertuples():
        if r.own_group_accuracy > r.other_group_accuracy:
            verdict = (
                "own group higher, and its CI lies above every other group's"
                if r.own_group_ci_low > r.other_group_ci_high
                else "own group higher, but the CIs overlap"
            )
        else:
            verdict = "own group not higher"
        lines.append(
            f"- Models trained on **{r.train_age_group}** images reach {r.own_group_accuracy:.1%} "
            f"[{r.own_group_ci_low:.1%}, {r.own_group_ci_high:.1%}] on {r.train_age_group} test images "
            f"and {r.other_group_accuracy:.1%} on other age groups ({verdict})."
        )
    return lines


def comparison_lines(cross_age: pd.DataFrame, age_groups: list[str]) -> list[str]:
    """Per test age group: pooled models and baselines against the own-group model."""
    cell = {(r.train_age_group, r.test_age_group): r for r in cross_age.itertuples()}
    others = [g for g in cross_age["train_age_group"].unique() if g not in age_groups]
    lines = []
    for group in age_groups:
        own = cell.get((group, group))
        if own is None:
            continue
        for name in others:
            if (name, group) not in cell:
                continue
            r = cell[(name, group)]
            verdict = compare(r.accuracy_ci_low, r.accuracy_ci_high, own.accuracy_ci_low, own.accuracy_ci_high)
            lines.append(
                f"- On **{group}** test images, {name} reaches {r.accuracy:.1%} [{r.accuracy_ci_low:.1%}, "
                f"{r.accuracy_ci_high:.1%}] against {own.accuracy:.1%} [{own.accuracy_ci_low:.1%}, "
                f"{own.accuracy_ci_high:.1%}] for the {group} model: {verdict}."
            )
    return lines


def report_markdown(
    cross_age: pd.DataFrame,
    heads: pd.DataFrame,
    models: list[str],
    flagged: list[str],
    level: float,
    age_groups: list[str],
) -> str:
    """results/report.md: the cross-age table and the study's statements, computed."""
    table = cross_age.assign(
        accuracy_ci=with_ci(cross_age, "accuracy", 3), macro_f1_ci=with_ci(cross_age, "macro_f1", 3)
    )[["train_age_group", "test_age_group", "n", "n_images", "accuracy_ci", "macro_f1_ci", "degenerate_models"]]
    lines = [
        "# Cross-age generalisation report",
        "",
        f"Models: {', '.join(models)}.",
        f"Accuracy and macro-F1 with {level:.0%} bootstrap confidence intervals over test images, pooled over "
        "the datasets (and models) of each cell; n counts predictions, n_images distinct test images.",
        "",
        markdown_table(table),
        "",
        "## Headline",
        "",
    ]
    lines += headline_lines(heads) or ["- No age group was tested both on its own and on another age group."]
    comparisons = comparison_lines(cross_age, age_groups)
    if comparisons:
        lines += ["", "## Pooled models and baselines against the own-group model", "", *comparisons]
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
