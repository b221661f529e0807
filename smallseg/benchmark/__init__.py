"""Speed benchmark behind ``tools/benchmark.py``: where a training step's time goes
(:mod:`.step`), where an epoch's time goes in real training runs of this tree and of another
git revision (:mod:`.epochs`, :mod:`.epoch_timer`), and the Markdown report (:mod:`.report`)."""
from .report import format_table
from .run import machine_info, run_benchmark
from .step import bench_config, matmul_tflops, stock_baseline_cfg

__all__ = ['bench_config', 'format_table', 'machine_info', 'matmul_tflops', 'run_benchmark',
           'stock_baseline_cfg']
