"""Scores computed from predictions: accuracy and the confusion matrix."""


def classification_report(true_labels, predicted_labels, class_names):
    """Accuracy, and a confusion matrix with rows = true class, columns = predicted class."""
    if len(true_labels) != len(predicted_labels):
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted_labels)} predictions")
    index = {name: i for i, name in enumerate(class_names)}
    matrix = [[0] * len(class_names) for _ in class_names]
    for truth, guess in zip(true_labels, predicted_labels):
        matrix[index[truth]][index[guess]] += 1
    correct = sum(matrix[i][i] for i in range(len(class_names)))
    return {"accuracy": correct / max(len(true_labels), 1), "class_names": list(class_names),
            "confusion_matrix": matrix}
