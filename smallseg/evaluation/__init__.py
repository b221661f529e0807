"""Registered metrics."""
from .dice_metric import DiceMetric, confusion_matrix, metrics_to_fractions, per_image_dice

__all__ = ['DiceMetric', 'confusion_matrix', 'metrics_to_fractions', 'per_image_dice']
