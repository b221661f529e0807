"""smallseg: registered mmseg components for small multiclass segmentation datasets.

Importing the package applies the stack fixes in :mod:`smallseg.compat` first, then
registers the dataset, models, metric, hooks, engine and tracking parts with mmseg/mmengine.
Configs load it with ``custom_imports = dict(imports=['smallseg'])``.
"""
from . import compat

compat.apply()

from . import datasets, engine, evaluation, hooks, models, tracking  # noqa: E402,F401

__version__ = '0.1.0'
