"""smallseg's layers point one way: utils <- registered components <- the tools' logic.

The import graph is read from the source (every import statement, inside functions too), so
a cycle or an upward import fails here even when it happens to work at run time.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'smallseg'
# registered components and leaf helpers: they never import the tools' logic
LOWER = ('utils', 'models', 'hooks', 'datasets', 'evaluation', 'engine', 'tracking')
UPPER = ('apis', 'analysis', 'eda', 'convert')


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports_of(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """The smallseg modules that ``path`` imports, resolved to the nearest module."""
    name = module_name(path, root)
    package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                base = '.'.join(package.split('.')[:len(package.split('.')) - node.level + 1]
                                + ([node.module] if node.module else []))
            targets = [f'{base}.{alias.name}' for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition('.')[0]
            # a module's own parent packages are imported before it, never because of it
            if target.startswith('smallseg') and not (name + '.').startswith(target + '.'):
                found.add(target)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob('*.py')}
    return {name: imports_of(path, set(files), root) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def layer(name: str) -> str:
    return name.split('.')[1] if name.count('.') else ''


def upward_imports(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Components importing the tools' logic, and utils importing anything of smallseg's."""
    found = {}
    for name, deps in graph.items():
        if layer(name) == 'utils':
            bad = [dep for dep in deps if layer(dep) != 'utils']
        elif layer(name) in LOWER:
            bad = [dep for dep in deps if layer(dep) in UPPER]
        else:
            continue
        if bad:
            found[name] = sorted(bad)
    return found


def test_no_import_cycle_in_smallseg():
    assert cycles(import_graph()) == []


def test_components_never_import_the_tools_logic_and_utils_is_a_leaf():
    assert upward_imports(import_graph()) == {}


@pytest.mark.parametrize('planted', ['cycle', 'upward'])
def test_the_checks_see_a_planted_violation(tmp_path, planted):
    root = tmp_path / 'smallseg'
    for sub in ('utils', 'models', 'apis'):
        (root / sub).mkdir(parents=True)
        (root / sub / '__init__.py').write_text('')
    (root / '__init__.py').write_text('')
    if planted == 'cycle':
        (root / 'apis' / 'a.py').write_text('from . import b\n')
        (root / 'apis' / 'b.py').write_text('def f():\n    from .a import g\n')
        assert cycles(import_graph(root)) == [['smallseg.apis.a', 'smallseg.apis.b']]
    else:
        (root / 'apis' / 'train.py').write_text('X = 1\n')
        (root / 'models' / 'loss.py').write_text('from smallseg.apis.train import X\n')
        (root / 'utils' / 'io.py').write_text('from smallseg.models.loss import X\n')
        assert upward_imports(import_graph(root)) == {
            'smallseg.models.loss': ['smallseg.apis.train'],
            'smallseg.utils.io': ['smallseg.models.loss']}
