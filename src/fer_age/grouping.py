"""Subject-disjoint, stratified assignment of groups of images to the train/valid/test splits."""

from __future__ import annotations

import numpy as np

SPLIT_ORDER = ("test", "valid", "train")


def group_ids(subjects: list[str], digests: list[str], by_subject: bool) -> np.ndarray:
    """Groups that must stay in one split: same subject (when known) or byte-identical image."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for subject, digest in zip(subjects, digests):
        find(f"h:{digest}")
        if by_subject and subject:
            parent[find(f"h:{digest}")] = find(f"s:{subject}")
    roots = [find(f"h:{d}") for d in digests]
    return np.unique(roots, return_inverse=True)[1]


def split_fractions(test_size: float, valid_size: float) -> np.ndarray:
    """Image fractions of test, valid and train: the test split first, validation out of the rest."""
    return np.array([test_size, (1 - test_size) * valid_size, (1 - test_size) * (1 - valid_size)])


def deal_groups(groups: np.ndarray, strata: np.ndarray, fractions: np.ndarray, seed: int) -> np.ndarray:
    """The split (index into ``SPLIT_ORDER``) of every image, dealing whole groups.

    Groups go, largest first (seeded order among equal sizes), to the split that still lacks the
    most images of the group's strata; the image fractions then follow ``fractions`` within one
    group's size, per stratum, however uneven the groups are (one person with half of a class
    ends up in the training split instead of swelling the test split).
    """
    group_index, group_of = np.unique(groups, return_inverse=True)
    _, stratum_of = np.unique(strata, return_inverse=True)
    counts = np.zeros((len(group_index), stratum_of.max() + 1))
    np.add.at(counts, (group_of, stratum_of), 1)
    targets = fractions[:, None] * counts.sum(axis=0)[None, :]
    filled = np.zeros_like(targets)
    order = np.random.default_rng(seed).permutation(len(group_index))
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    assigned = np.empty(len(group_index), dtype=int)
    for g in order:
        need = ((targets - filled) * counts[g]).sum(axis=1)
        assigned[g] = int(np.argmax(need))
        filled[assigned[g]] += counts[g]
    return assigned[group_of]


def subjects_per_split(n_subjects: int, test_size: float, valid_size: float) -> tuple[int, int, int]:
    """How many of ``n_subjects`` equal subjects land in test, valid and train."""
    split = deal_groups(np.arange(n_subjects), np.zeros(n_subjects), split_fractions(test_size, valid_size), 0)
    test, valid, train = (int((split == k).sum()) for k in range(len(SPLIT_ORDER)))
    return test, valid, train
