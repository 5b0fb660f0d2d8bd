"""Score a labelled JSONL file (see `gemma_kit.shield.data`), report the paper's metrics,
and choose thresholds."""

from gemma_kit.shield import data, metrics, policies as policy_lib, thresholds as threshold_lib


def evaluate(shield, path, policies=None):
    """(report, scores, dataset): `metrics.evaluate` on the file's texts. `policies`
    (names or `Policy` objects; default: those the file labels) are scored, and a
    custom policy's key may label the file's lines."""
    return _evaluate(shield, *_read(path, policies))


def calibrate(shield, path, out, policies=None, target_precision=None):
    """Thresholds per policy (best F1, or the most recall at a target precision), saved
    to `out`. Each policy needs both labels in the file, checked before scoring."""
    dataset, resolved = check_calibration_data(path, policies)
    report, scores, dataset = _evaluate(shield, dataset, resolved)
    chosen = metrics.calibrate(scores, dataset.labels, dataset.keys, target_precision)
    method = "optimal_f1" if target_precision is None else f"precision>={target_precision}"
    threshold_lib.save(out, chosen, method=method, data=str(path), texts=len(dataset.prompts), report=report)
    return chosen, report


def check_calibration_data(path, policies=None):
    """(dataset, policies) of a labelled file for `calibrate`, read and checked: each
    policy needs violating and safe texts. The CLI calls it before loading a model."""
    dataset, resolved = _read(path, policies)
    metrics.check_both_labels(dataset.labels, dataset.keys, f"{path}: ")
    return dataset, resolved


def _read(path, policies):
    resolved = policy_lib.resolve_all(policies) if policies is not None else None
    return data.read_jsonl(path, [p.key for p in resolved] if resolved else None), resolved


def _evaluate(shield, dataset, resolved):
    scores = shield.score(dataset.prompts, dataset.responses, policies=resolved or dataset.keys)
    return metrics.evaluate(scores, dataset.labels, dataset.keys), scores, dataset
