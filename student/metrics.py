"""Task (section 6): per-class metrics from a confusion matrix."""


def get_student_metrics(confusion_matrix, idx):
    """Recall, precision and F1 score of class `idx`.

    Args:
        confusion_matrix: label_count x label_count counts (numpy array of ints);
            row = expected class, column = predicted class.
        idx: Index of the class (0 silence, 1 unknown, 2... the wanted words).

    Returns:
        {"recall": float, "precision": float, "f1_score": float}, each a plain Python float
        (not a numpy number) between 0 and 1, or None where the metric is undefined (its
        definition would divide by zero). The F1 score is 0.0 for a class that is predicted but
        never present, or present but never predicted, and None for a class that is neither.
        Return None while not implemented.
    """
    # TODO: compute the three metrics from the row and the column of class idx.
    return None
