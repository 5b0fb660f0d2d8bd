"""Score a labelled JSONL file (see `gemma_kit.shield.data`), report the paper's metrics,
and choose thresholds."""

from gemma_kit.shield import data, metrics, policies as policy_lib, thresholds as threshold_lib


def evaluate(shield, path, policies=None):
    """(report, scores, dataset): `metrics.evaluate` on the file's texts. `policies`
    (names or `Policy` objects; default: those the file labels) are scored, and a
    custom policy's key may label the file's lines."""
    resolved = policy_lib.resolve_all(policies) if policies is not None else None
    dataset = data.read_jsonl(path, [p.key for p in resolved] if resolved else None)
    scores = shield.score(dataset.prompts, dataset.responses, policies=resolved or dataset.keys)
    return metrics.evaluate(scores, dataset.labels, dataset.keys), scores, dataset


def calibrate(shield, path, out, policies=None, target_precision=None):
    """Thresholds per policy (best F1, or the most recall at a target precision), saved to `out`."""
    report, scores, dataset = evaluate(shield, path, policies)
    chosen = metrics.calibrate(scores, dataset.labels, dataset.keys, target_precision)
    method = "optimal_f1" if target_precision is None else f"precision>={target_precision}"
    threshold_lib.save(out, chosen, method=method, data=str(path), texts=len(dataset.prompts), report=report)
    return chosen, report
