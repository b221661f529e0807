"""Results analysis: error-analysis pictures, training curves, model comparison.

* :mod:`.error_analysis` -- best/worst/correct/error pictures and the worst-class summary
* :mod:`.curves` -- train loss, learning rate and validation Dice per epoch from the logs
* :mod:`.compare` -- detailed_comparison.json, comparison.md and per-model experiment cards
* :mod:`.figures`, :mod:`.overlay` -- the plotting and palette helpers they share
"""
from .compare import write_comparison
from .curves import plot_training_curves, read_curves
from .error_analysis import run_error_analysis

__all__ = ['plot_training_curves', 'read_curves', 'run_error_analysis', 'write_comparison']
