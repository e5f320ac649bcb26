"""Reference solution: per-class metrics from a confusion matrix."""


def get_student_metrics(confusion_matrix, idx):
    """Recall, precision and F1 score of class idx (rows expected, columns predicted)."""
    true_positives = confusion_matrix[idx][idx]
    expected = sum(confusion_matrix[idx])  # true positives + false negatives
    predicted = sum(row[idx] for row in confusion_matrix)  # true positives + false positives
    recall = float(true_positives / expected) if expected else None
    precision = float(true_positives / predicted) if predicted else None
    # F1 = 2 TP / (2 TP + FP + FN), the harmonic mean of precision and recall.
    f1_denominator = expected + predicted
    f1_score = float(2 * true_positives / f1_denominator) if f1_denominator else None
    return {"recall": recall, "precision": precision, "f1_score": f1_score}
