"""The committed results.json describes the committed configs: a recipe change without a new
``make run`` fails here."""
import json
from pathlib import Path

from smallseg.apis.results import stale_recipes

ROOT = Path(__file__).resolve().parents[1]


def test_committed_results_match_the_configs():
    models = json.loads((ROOT / 'results.json').read_text())['models']
    assert set(models) == {'deeplabv3plus_r50', 'unet_r34'}
    assert stale_recipes(ROOT / 'results.json') == {}, (
        'results.json was made with other recipe settings than configs/ now hold: '
        'regenerate it with `make run`')


def test_a_doctored_report_is_flagged(tmp_path):
    data = json.loads((ROOT / 'results.json').read_text())
    data['models']['unet_r34']['recipe']['optimizer']['weight_decay'] = 1e-4
    data['models']['deeplabv3plus_r50']['recipe']['img_size'] = [256, 256]
    del data['models']['deeplabv3plus_r50']['recipe']['losses'][1]
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(data))
    assert stale_recipes(path) == {'deeplabv3plus_r50': ['losses', 'img_size'],
                                   'unet_r34': ['optimizer']}


def test_a_report_without_recipes_is_flagged(tmp_path):
    data = json.loads((ROOT / 'results.json').read_text())
    for entry in data['models'].values():
        entry.pop('recipe', None)
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(data))
    assert set(stale_recipes(path)) == {'deeplabv3plus_r50', 'unet_r34'}


def test_readme_shows_the_committed_results():
    readme = (ROOT / 'README.md').read_text()
    shown = readme.split('<!-- results:begin -->')[1].split('<!-- results:end -->')[0]
    table = [line for line in (ROOT / 'results' / 'comparison.md').read_text().splitlines()
             if line.startswith('|')]
    results = json.loads((ROOT / 'results.json').read_text())
    rows = len(results['models']) + len(results.get('ensembles', {}))
    assert rows >= 2 and len(table) == 2 + rows  # header, rule, models, ensembles
    assert [line for line in shown.splitlines() if line.startswith('|')] == table
