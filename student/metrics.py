"""Task (section 6): per-class metrics from a confusion matrix."""


def get_student_metrics(confusion_matrix, idx):
    """Recall, precision and F1 score of class `idx`.

    Args:
        confusion_matrix: label_count x label_count counts (numpy array);
            row = expected class, column = predicted class.
        idx: Index of the class (0 silence, 1 unknown, 2... the wanted words).

    Returns:
        {"recall": float, "precision": float, "f1_score": float}, each a plain Python float
        (not a numpy number), or None where it is undefined:
        - recall = TP / (TP + FN): None when the class has no examples (its row sums to 0);
        - precision = TP / (TP + FP): None when the class is never predicted (its column sums to 0);
        - f1_score = 2 TP / (2 TP + FP + FN), the harmonic mean of the two: 0.0 when the class is
          predicted but never present (or present but never predicted), None when it is neither.
        Return None while not implemented.
    """
    # TODO: compute the three metrics from the row and the column of class idx.
    return None
