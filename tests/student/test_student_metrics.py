"""Task 6: recall, precision and F1 score per class (student/metrics.py)."""

import numpy as np
import pytest

from student.metrics import get_student_metrics

# rows: expected class, columns: predicted class (silence, unknown, yes, no)
MATRIX = np.array([
    [10, 0, 0, 0],
    [2, 6, 1, 1],
    [0, 3, 12, 5],
    [0, 0, 0, 0],  # "no" never occurs in this test set, but is predicted 6 times
])


def _metrics(matrix, idx):
    result = get_student_metrics(np.array(matrix), idx)
    assert isinstance(result, dict), f"get_student_metrics must return a dict, got {result!r} (not implemented yet?)"
    assert set(result) == {"recall", "precision", "f1_score"}, f"keys must be recall, precision, f1_score; got {sorted(result)}"
    return result


def _close(got, expected, name):
    assert got is not None and got == pytest.approx(expected), f"{name}: expected {expected:.4f}, got {got}"


def test_recall_is_the_share_of_a_class_found():
    _close(_metrics(MATRIX, 2)["recall"], 12 / 20, "recall of class 2")


def test_precision_is_the_share_of_predictions_that_are_right():
    _close(_metrics(MATRIX, 2)["precision"], 12 / 13, "precision of class 2")


def test_f1_score_is_the_harmonic_mean_of_precision_and_recall():
    precision, recall = 12 / 13, 12 / 20
    _close(_metrics(MATRIX, 2)["f1_score"], 2 * precision * recall / (precision + recall), "F1 of class 2")


def test_a_perfect_class_scores_one_everywhere():
    result = _metrics(np.diag([5, 7, 9, 3]), 1)
    for name in ("recall", "precision", "f1_score"):
        _close(result[name], 1.0, name)


def test_recall_of_a_class_never_present_is_none():
    result = _metrics(MATRIX, 3)
    assert result["recall"] is None, f"class 3 has no examples: recall is undefined (None), got {result['recall']}"


def test_precision_of_a_class_never_predicted_is_none():
    matrix = [[4, 0, 1], [2, 0, 3], [0, 0, 5]]
    result = _metrics(matrix, 1)
    assert result["precision"] is None, f"class 1 is never predicted: precision is undefined (None), got {result['precision']}"
    _close(result["recall"], 0.0, "recall of a class never predicted")


def test_f1_of_a_class_predicted_but_never_present_is_zero():
    _close(_metrics(MATRIX, 3)["f1_score"], 0.0, "F1 of a class predicted 6 times but never present")


def test_f1_of_a_class_neither_present_nor_predicted_is_none():
    result = _metrics([[4, 1, 0], [2, 3, 0], [0, 0, 0]], 2)
    assert result["f1_score"] is None, f"class 2 is neither present nor predicted: F1 is undefined, got {result['f1_score']}"


def test_metrics_are_plain_floats():
    result = _metrics(MATRIX, 0)
    for name, value in result.items():
        assert isinstance(value, float), f"{name} should be a float, got {type(value).__name__}"
