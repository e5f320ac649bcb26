"""Testing a trained Keras model: accuracy, confusion matrix and the student's per-class metrics.

(A kit helper, not a pytest file: the tests live in tests/.)
"""

import numpy as np


def get_accuracy(expected_indices, predicted_indices):
    """Share of examples whose predicted class is the expected one, in [0, 1]."""
    expected = np.asarray(expected_indices).ravel()
    predicted = np.asarray(predicted_indices).ravel()
    if len(expected) != len(predicted):
        raise ValueError(f"{len(expected)} expected labels but {len(predicted)} predictions.")
    if len(expected) == 0:
        raise ValueError("No examples to compute an accuracy of.")
    return float(np.mean(expected == predicted))


def get_confusion_matrix(expected_indices, predicted_indices, model_settings):
    """label_count x label_count counts: row = expected class, column = predicted class."""
    label_count = model_settings["label_count"]
    expected = np.asarray(expected_indices).ravel().astype(np.int64)
    predicted = np.asarray(predicted_indices).ravel().astype(np.int64)
    if len(expected) != len(predicted):
        raise ValueError(f"{len(expected)} expected labels but {len(predicted)} predictions.")
    matrix = np.zeros((label_count, label_count), dtype=np.int64)
    np.add.at(matrix, (expected, predicted), 1)
    return matrix


def plot_confusion_matrix(confusion_matrix, class_names, title="Confusion matrix"):
    """A heatmap of the confusion matrix with the class names and the counts in the cells."""
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion_matrix)
    figure, axis = plt.subplots(figsize=(1.2 * len(class_names) + 2, 1.2 * len(class_names) + 1))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("expected")
    axis.set_title(title)
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            dark = matrix[row, column] > matrix.max() / 2
            axis.text(column, row, matrix[row, column], ha="center", va="center",
                      color="white" if dark else "black")
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    return figure


def print_student_metrics(confusion_matrix, class_names):
    """Prints recall, precision and F1 per class from student/metrics.py, or says it is not done."""
    from student.metrics import get_student_metrics

    print("metrics:")
    for index, name in enumerate(class_names):
        metrics = get_student_metrics(np.asarray(confusion_matrix), index)
        if metrics is None:
            print("  not implemented yet: fill in get_student_metrics in student/metrics.py")
            return
        shown = {key: value for key, value in metrics.items() if value is not None}
        if not shown:
            continue
        print(f"  {name}:")
        for key, value in shown.items():
            print(f"    {key} = {value:.3f}" if isinstance(value, float) else f"    {key} = {value}")


def test(model, audio_processor, model_settings, checkpoint, batch_size=100):
    """The lab's test step: the checkpoint's weights on the testing split.

    The weights are loaded into a copy, so the model passed in keeps its own. Returns
    (accuracy, confusion_matrix); print_test_report shows them with the student's metrics.
    """
    from checkpoints import with_weights

    dataset = audio_processor.get_data(audio_processor.Modes.TESTING).batch(batch_size)
    predictions = with_weights(model, checkpoint).predict(dataset, verbose=0)
    expected_indices = np.concatenate([labels.numpy() for _, labels in dataset])
    predicted_indices = np.argmax(predictions, axis=1)
    accuracy = get_accuracy(expected_indices, predicted_indices)
    return accuracy, get_confusion_matrix(expected_indices, predicted_indices, model_settings)


def print_test_report(accuracy, confusion_matrix, class_names, title="test"):
    """Accuracy, the confusion matrix and the student's per-class metrics."""
    print(f"{title} accuracy = {accuracy * 100:.2f}% (N={int(np.sum(confusion_matrix))})")
    print()
    print("confusion matrix (rows: expected, columns: predicted):")
    print(confusion_matrix)
    print()
    print_student_metrics(confusion_matrix, class_names)


def plot_accuracies(accuracies):
    """Bars of test accuracy per model form ({"Keras": 0.91, "int8 .tflite": 0.90, ...}; None is left out)."""
    import matplotlib.pyplot as plt

    shown = {name: value for name, value in accuracies.items() if value is not None}
    figure, axis = plt.subplots(figsize=(1.6 * len(shown) + 1.5, 3))
    axis.bar(range(len(shown)), list(shown.values()), color="tab:blue")
    for position, value in enumerate(shown.values()):
        axis.text(position, value, f"{value:.3f}", ha="center", va="bottom")
    axis.set_xticks(range(len(shown)), list(shown), rotation=15)
    axis.set_ylim(0, 1.08)
    axis.set_ylabel("test accuracy")
    figure.tight_layout()
    return figure
