"""Task (section 6): per-class metrics from a confusion matrix."""


def get_student_metrics(confusion_matrix, idx):
    """Recall, precision and F1 score of class `idx`.

    Args:
        confusion_matrix: label_count x label_count counts (numpy array);
            row = expected class, column = predicted class.
        idx: Index of the class (0 silence, 1 unknown, 2... the wanted words).

    Returns:
        {"recall": float, "precision": float, "f1_score": float}, with None for a value that is
        undefined (its denominator is zero). Return None while not implemented.
    """
    # TODO: compute the three metrics from the row and the column of class idx.
    return None
