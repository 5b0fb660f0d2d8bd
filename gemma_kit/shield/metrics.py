"""The paper's evaluation: optimal F1 and AU-PRC, per harm (one-vs-all) and overall
(a text's score is its maximum over harms; its label, any harm).

AU-PRC is the step-wise area under the precision-recall curve, sum over thresholds
of (R_n - R_{n-1}) * P_n (average precision, as scikit-learn computes it); the
trapezoidal area overstates it. A text is flagged when score >= threshold.
"""

import numpy as np

from gemma_kit.errors import GemmaKitError


def pr_curve(labels, scores):
    """(precision, recall, thresholds), one point per distinct score, thresholds descending."""
    labels, scores = _check(labels, scores)
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_pos = np.cumsum(labels)[last_of_each]
    flagged = last_of_each + 1
    positives = labels.sum()
    recall = true_pos / positives if positives else np.zeros_like(true_pos, dtype=float)
    return true_pos / flagged, recall, scores[last_of_each]


def average_precision(labels, scores):
    precision, recall, _ = pr_curve(labels, scores)
    if recall[-1] == 0:
        return float("nan")  # no positive labels: undefined
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def optimal_f1(labels, scores):
    """(best F1 over all thresholds, the threshold that gives it)."""
    precision, recall, thresholds = pr_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


def threshold_for_precision(labels, scores, target):
    """The lowest threshold (so the most recall) whose precision is at least `target`."""
    precision, recall, thresholds = pr_curve(labels, scores)
    ok = np.flatnonzero((precision >= target) & (recall > 0))
    if not len(ok):
        raise GemmaKitError(f"no threshold reaches precision {target}; the best is {precision.max():.3f}")
    return float(thresholds[ok[-1]])


def evaluate(scores, labels, keys):
    """Report per policy and overall: optimal F1, its threshold, AU-PRC, counts."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 2 or scores.shape[1] != len(keys):
        raise GemmaKitError(f"scores {scores.shape} and labels {labels.shape} must both be [texts, {len(keys)}]")
    report = {key: _summary(labels[:, j], scores[:, j]) for j, key in enumerate(keys)}
    report["overall"] = _summary(labels.any(axis=1), scores.max(axis=1))
    return report


def check_both_labels(labels, keys, where=""):
    """A threshold is chosen between violating and safe texts: each policy needs both."""
    labels = np.asarray(labels)
    for j, key in enumerate(keys):
        counts = int(np.sum(labels[:, j] == 1)), int(np.sum(labels[:, j] == 0))
        if not all(counts):
            raise GemmaKitError(f"{where}policy {key!r} has {counts[0]} violating and {counts[1]} safe texts; "
                                "choosing a threshold needs both")


def calibrate(scores, labels, keys, target_precision=None):
    """{key: threshold}: best F1 per policy, or the most recall at `target_precision`."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    check_both_labels(labels, keys)
    thresholds = {}
    for j, key in enumerate(keys):
        try:
            if target_precision is None:
                thresholds[key] = optimal_f1(labels[:, j], scores[:, j])[1]
            else:
                thresholds[key] = threshold_for_precision(labels[:, j], scores[:, j], target_precision)
        except GemmaKitError as e:
            raise GemmaKitError(f"policy {key!r}: {e}") from None
    return thresholds


def _summary(labels, scores):
    f1, threshold = optimal_f1(labels, scores)
    return {"optimal_f1": f1, "threshold": threshold, "au_prc": average_precision(labels, scores),
            "positives": int(np.sum(labels)), "texts": int(len(labels))}


def _check(labels, scores):
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1 or not len(labels):
        raise GemmaKitError(f"labels {labels.shape} and scores {scores.shape} must be equal-length 1-D arrays")
    if not np.isin(labels, (0, 1)).all():
        raise GemmaKitError("labels must be 0 or 1")
    if not np.isfinite(scores).all():
        raise GemmaKitError("scores must be finite")
    return labels.astype(np.int64), scores
