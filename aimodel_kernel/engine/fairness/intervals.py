"""Bootstrap intervals of a fairness audit: per-group metrics and disparities over seeded
resamples, computed from per-group counts (all resamples of a chunk in one ``bincount``)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..core.data import TaskInfo

MAX_CHUNK_ROWS = 5_000_000  # resampled rows held at once (40 MB of indices)


def _chunk(n: int) -> int:
    return max(1, min(50, MAX_CHUNK_ROWS // max(n, 1)))


def _boot_counts(codes: np.ndarray, n_groups: int, n_cells: int, n_boot: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Per-resample, per-group counts of each cell code: shape (n_boot, n_groups, n_cells)."""
    n = len(codes)
    chunk = _chunk(n)
    out = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, (b, n))
        shifted = codes[idx] + (np.arange(b) * n_groups * n_cells)[:, None]
        counts = np.bincount(shifted.ravel(), minlength=b * n_groups * n_cells)
        out.append(counts.reshape(b, n_groups, n_cells))
    return np.concatenate(out)


def _boot_sums(values: np.ndarray, codes: np.ndarray, n_groups: int, n_boot: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-resample, per-group row counts ``(n_boot, n_groups)`` and sums of each row of
    ``values`` ``(k, n_boot, n_groups)`` (regression)."""
    n = len(codes)
    chunk = _chunk(n)
    counts, sums = [], []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, (b, n))
        shifted = (codes[idx] + (np.arange(b) * n_groups)[:, None]).ravel()
        counts.append(np.bincount(shifted, minlength=b * n_groups).reshape(b, n_groups))
        sums.append(np.stack([
            np.bincount(shifted, weights=v[idx].ravel(), minlength=b * n_groups)
            .reshape(b, n_groups) for v in values]))
    return np.concatenate(counts).astype(float), np.concatenate(sums, axis=1)


def bootstrap(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int,
              task: TaskInfo, *, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """95% percentile intervals of the summaries and per-group metrics over seeded resamples.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray
        True and predicted labels (values for regression).
    codes : numpy.ndarray of int
        The group of each row, ``0 .. n_groups-1`` in the order of the audit's groups.
    task : TaskInfo
    n_boot, seed : int
        Resamples (of all rows, with replacement) and the seed of the resampling.

    Returns
    -------
    dict
        ``{"summary": {name: [lo, hi]}, "groups": [{metric: [lo, hi]}, ...], "n_boot", "seed"}``
        (groups in the order of ``codes``).
    """
    rng = np.random.default_rng(seed)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices in tiny resamples
        if task.is_classification:
            pos = task.classes[1]
            cell = codes * 4 + 2 * (y_true == pos) + (y_pred == pos)
            c = _boot_counts(cell, n_groups, 4, n_boot, rng).astype(float)
            tn, fp, fn, tp = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
            count = tn + fp + fn + tp
            per = {"selection_rate": (tp + fp) / count, "accuracy": (tp + tn) / count,
                   "tpr": tp / (tp + fn), "fpr": fp / (fp + tn), "fnr": fn / (tp + fn),
                   "precision": tp / (tp + fp)}
            spread = {k: np.nanmax(v, 1) - np.nanmin(v, 1) for k, v in per.items()}
            summary = {
                "accuracy": (tp + tn).sum(1) / count.sum(1),
                "demographic_parity_difference": spread["selection_rate"],
                "demographic_parity_ratio": np.nanmin(per["selection_rate"], 1)
                / np.nanmax(per["selection_rate"], 1),
                "equal_opportunity_difference": spread["tpr"],
                "equalized_odds_difference": np.fmax(spread["tpr"], spread["fpr"]),
                "accuracy_difference": spread["accuracy"],
            }
        else:
            yt, yp = y_true.astype(float), y_pred.astype(float)
            count, (abs_err, sq_err, pred, true) = _boot_sums(
                np.stack([np.abs(yt - yp), (yt - yp) ** 2, yp, yt]), codes, n_groups, n_boot, rng)
            per = {"mae": abs_err / count, "rmse": np.sqrt(sq_err / count),
                   "mean_prediction": pred / count, "mean_true": true / count}
            spread = {k: np.nanmax(v, 1) - np.nanmin(v, 1) for k, v in per.items()}
            summary = {"mae": abs_err.sum(1) / count.sum(1), "mae_gap": spread["mae"],
                       "mae_ratio": np.nanmin(per["mae"], 1) / np.nanmax(per["mae"], 1),
                       "rmse_gap": spread["rmse"], "mean_prediction_gap": spread["mean_prediction"]}

        def interval(values: np.ndarray) -> list[float]:
            return [float(v) for v in np.nanpercentile(values, [2.5, 97.5], axis=0)]

        per_group = [{k: [float(v) for v in np.nanpercentile(per[k][:, g], [2.5, 97.5])]
                      for k in per} for g in range(n_groups)]
        return {"summary": {k: interval(v) for k, v in summary.items()}, "groups": per_group,
                "n_boot": n_boot, "seed": seed}
