"""The benchmark's result as Markdown tables."""
from __future__ import annotations

from .step import PHASES


def _pct(value) -> str:
    return '-' if value is None else f'{value:.0%}'


def step_table(result: dict) -> list[str]:
    rows = ['| run | precision | step s | train img/s | data | preprocess | forward | backward '
            '| optimizer | peak MB | TFLOP/step | TFLOP/s | % of matmul peak | infer img/s |',
            '|---' * 14 + '|']
    for name, r in result['runs'].items():
        shares = ' | '.join(f"{r['step_shares'][k]:.1%}" for k in PHASES)
        rows.append(
            f"| {name} | {r['precision']}{' +CL' if r['channels_last'] else ''} | {r['step_s']} "
            f"| {r['train_img_s']} | {shares} | {r['peak_mem_mb']:.0f} "
            f"| {r['tflop_per_step']} | {r['achieved_tflops']} "
            f"| {_pct(r.get('share_of_matmul_peak'))} ({r['peak_used']}) | {r['infer_img_s']} |")
    rows.append('')
    stock = result['runs'].get('stock_mmseg_deeplabv3plus_r50-d8')
    first = next(iter(result['runs'].values()))
    if stock is not None and stock is not first:
        rows.append(f"speed-up of the training step over stock mmseg: "
                    f"{stock['step_s'] / first['step_s']:.2f}x")
    peak = result['matmul_peak_tflops']
    rows.append('matmul peak: ' + ', '.join(f'{k} {v} TFLOP/s' for k, v in peak.items()))
    return rows


def epoch_table(result: dict) -> list[str]:
    runs = result['epoch_runs']
    n = result['epochs']
    used = 'epoch 1 (the only one)' if n == 1 else 'epoch 2' if n == 2 else f'epochs 2..{n}'
    rows = [f'Epochs (median of {used}; the first epoch warms up):', '',
            '| config | tree | precision | epoch s | train s | val s | checkpoint s | train '
            '| val | checkpoint | s/iter |', '|---' * 11 + '|']
    names = list(runs['this'])
    for name in names:
        for label, by_config in runs.items():
            r = by_config[name]
            m, s = r['median'], r['shares']
            commit = (r.get('commit') or '')[:8] + ('+' if r.get('dirty') else '')
            rows.append(
                f"| {name} | {label} {commit} | {r['precision']} | {m['epoch_s']:.2f} "
                f"| {m['train_s']:.2f} | {m['val_s']:.2f} | {m['checkpoint_s']:.2f} "
                f"| {_pct(s['train'])} | {_pct(s['val'])} | {_pct(s['checkpoint'])} "
                f"| {m['iter_s']:.3f} |")
    compare = result.get('compare')
    if compare:
        rev = compare['rev']
        rows += ['', f'| config | epoch s this | epoch s {rev} | speed-up ({rev} / this) |',
                 '|---' * 4 + '|']
        for name, c in compare['configs'].items():
            rows.append(f"| {name} | {c['epoch_s_this']:.2f} | {c['epoch_s_rev']:.2f} "
                        f"| {c['speedup']:.2f}x |")
    return rows


def format_table(result: dict) -> str:
    """The benchmark as Markdown: step breakdown, epoch breakdown, comparison, machine."""
    rows = []
    if 'runs' in result:
        rows += step_table(result) + ['']
    if 'epoch_runs' in result:
        rows += epoch_table(result) + ['']
    m = result['machine']
    flags = ' '.join(f for f, on in m['cpu_flags'].items() if on) or 'none of avx2..amx_bf16'
    rows.append(f"machine: {m['cpu_model']} ({flags}), {m['cpus']} CPUs, {m['threads']} "
                f"threads, device {m['device']}, torch {m['torch']}")
    return '\n'.join(rows)
