"""Exact per-class metrics, checked at grading only, on a matrix the public tests do not show."""

import numpy as np
import pytest

from student.metrics import get_student_metrics

MATRIX = np.array([[7, 1, 0], [2, 5, 3], [1, 0, 9]])


@pytest.mark.parametrize("idx, expected", [
    (0, {"recall": 7 / 8, "precision": 7 / 10, "f1_score": 14 / 18}),
    (1, {"recall": 5 / 10, "precision": 5 / 6, "f1_score": 10 / 16}),
    (2, {"recall": 9 / 10, "precision": 9 / 12, "f1_score": 18 / 22}),
])
def test_metrics_exact(idx, expected):
    got = get_student_metrics(MATRIX, idx)
    assert {name: pytest.approx(value) for name, value in expected.items()} == got
