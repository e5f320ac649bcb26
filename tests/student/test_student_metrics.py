"""Task 6: recall, precision and F1 score per class (student/metrics.py), checked by properties
every correct definition has; your grader checks exact values on other matrices."""

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
    assert isinstance(result, dict), (
        f"get_student_metrics must return a dict, got {type(result).__name__} (not implemented yet?)")
    assert set(result) == {"recall", "precision", "f1_score"}, (
        f"keys must be recall, precision, f1_score; got {sorted(result)}")
    return result


def test_a_perfect_class_scores_one_everywhere():
    result = _metrics(np.diag([5, 7, 9, 3]), 1)
    for name in ("recall", "precision", "f1_score"):
        assert result[name] == pytest.approx(1.0), (
            f"{name} of a class always found and never confused: got {result[name]}")


def test_a_class_present_but_never_predicted_scores_zero_recall():
    assert _metrics([[4, 0, 1], [2, 0, 3], [5, 0, 0]], 2)["recall"] == 0.0, "class 2 is present but never predicted"


def test_recall_reads_the_class_row_and_precision_its_column():
    # Errors only in the row of class 2 (some of it predicted as 1) leave its precision perfect.
    result = _metrics([[5, 0, 0], [0, 5, 0], [0, 3, 7]], 2)
    assert result["precision"] == pytest.approx(1.0) and result["recall"] < 1.0, result
    # Errors only in its column (others predicted as 2) leave its recall perfect.
    result = _metrics([[5, 0, 2], [0, 5, 0], [0, 0, 7]], 2)
    assert result["recall"] == pytest.approx(1.0) and result["precision"] < 1.0, result


def test_f1_score_lies_between_precision_and_recall():
    result = _metrics(MATRIX, 2)
    low, high = sorted((result["precision"], result["recall"]))
    assert low <= result["f1_score"] <= high, f"F1 {result['f1_score']} outside [{low}, {high}]"
    assert result["f1_score"] < (low + high) / 2, "F1 weighs the weaker of precision and recall more than their average"


def test_metrics_lie_between_zero_and_one_for_every_class():
    for idx in range(3):
        for name, value in _metrics(MATRIX, idx).items():
            assert value is not None and 0.0 <= value <= 1.0, f"{name} of class {idx}: got {value}"


def test_recall_of_a_class_never_present_is_none():
    result = _metrics(MATRIX, 3)
    assert result["recall"] is None, f"class 3 has no examples: recall is undefined (None), got {result['recall']}"


def test_precision_of_a_class_never_predicted_is_none():
    result = _metrics([[4, 0, 1], [2, 0, 3], [0, 0, 5]], 1)
    assert result["precision"] is None, (
        f"class 1 is never predicted: precision is undefined (None), got {result['precision']}")


def test_f1_of_a_class_predicted_but_never_present_is_zero():
    assert _metrics(MATRIX, 3)["f1_score"] == 0.0, "F1 of a class predicted 6 times but never present"


def test_f1_of_a_class_neither_present_nor_predicted_is_none():
    result = _metrics([[4, 1, 0], [2, 3, 0], [0, 0, 0]], 2)
    assert result["f1_score"] is None, (
        f"class 2 is neither present nor predicted: F1 is undefined, got {result['f1_score']}")


def test_metrics_are_plain_floats():
    for name, value in _metrics(MATRIX, 0).items():
        assert type(value) is float, f"{name} should be a plain Python float, got {type(value).__name__}"
