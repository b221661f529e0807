"""Exploratory data analysis of ``img/<split>`` + ``labels/<split>`` segmentation datasets.

:mod:`.scan` reads every file once and records problems and statistics (reusable by a dataset
validator), :mod:`.plots` draws the figures, :mod:`.report` writes the summaries and the
training strategy hints. ``eda/run_eda.py`` is the command line.
"""
from .scan import (ERROR_KINDS, INTEGRITY_KINDS, LABEL_KINDS, PROBLEM_KINDS, SPLITS,
                   DatasetLayoutError, DatasetScan, PairRecord, Problem, SplitStats, read_image,
                   read_mask, scan_dataset)

__all__ = ['ERROR_KINDS', 'INTEGRITY_KINDS', 'LABEL_KINDS', 'PROBLEM_KINDS', 'SPLITS',
           'DatasetLayoutError', 'DatasetScan', 'PairRecord', 'Problem', 'SplitStats',
           'read_image', 'read_mask', 'scan_dataset']
