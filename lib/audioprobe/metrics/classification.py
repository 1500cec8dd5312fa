"""Classification metrics: accuracy and the confusion matrix."""

from __future__ import annotations

import numpy as np


def accuracy(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Return the fraction of predictions equal to the labels."""
    predicted, actual = np.asarray(predicted), np.asarray(actual)
    if predicted.shape != actual.shape or predicted.size == 0:
        raise ValueError(f"need equal, non-empty shapes, got {predicted.shape} and {actual.shape}")
    return float((predicted == actual).mean())


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Return counts [n_classes, n_classes]: row = actual class, column = predicted class."""
    actual = np.asarray(actual, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if actual.shape != predicted.shape:
        raise ValueError(f"need equal shapes, got {actual.shape} and {predicted.shape}")
    if actual.size and (min(actual.min(), predicted.min()) < 0 or max(actual.max(), predicted.max()) >= n_classes):
        raise ValueError(f"class ids must lie in [0, {n_classes})")
    flat = np.bincount(actual * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)  # (actual, predicted)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Return recall per actual class from a confusion matrix; NaN for classes with no samples."""
    cm = np.asarray(cm)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, cm.diagonal() / support, np.nan)
