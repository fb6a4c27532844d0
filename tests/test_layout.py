"""The layout holds: each app imports only the apps below it, no module imports a view module, no imports run in
a circle, and each outside system is reached from one module. Read from the source with `ast` (imports inside
functions count too), so a wrong-way import fails here before anything runs it."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each package may import the ones it names (and itself). registry_ui (settings, URLs, middleware) sits on top.
MAY_IMPORT = {
    "registry": set(),
    "accounts": {"registry"},
    "catalog": {"registry", "accounts"},
    "cleanup": {"registry", "accounts", "catalog"},
    "garbage_collection": {"registry", "accounts", "catalog", "cleanup"},
    "webhooks": {"registry", "accounts", "catalog", "cleanup", "garbage_collection"},
    "api": {"registry", "accounts", "catalog", "cleanup", "garbage_collection", "webhooks"},
    "metrics": {"registry", "accounts", "catalog", "cleanup", "garbage_collection"},
    "registry_ui": {"registry", "accounts", "catalog", "cleanup", "garbage_collection", "webhooks", "api", "metrics"},
    "devtools": {"registry"},
}
# The one module through which each outside system is reached.
SEAMS = {
    # The bridge reads the Docker SDK's transport errors; webhooks.delivery posts every outgoing webhook.
    "requests": {"registry.client", "registry.bridge", "webhooks.delivery"},
    "docker": {"registry.bridge"},
    "bcrypt": {"registry.htpasswd"},
}
# The modules that wire views to URLs, and so may import view modules: the site's URLconf, and the API's NinjaAPI,
# which mounts the routers of its other view modules.
WIRING = {"registry_ui.urls", "api.views.v1"}


def modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found = {}
    for package in MAY_IMPORT:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The modules `name` imports, anywhere in it: `from a import b` counts as a.b when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


def problems(root: Path) -> list[str]:
    known = modules(root)
    graph = {name: imports(path, name, known) for name, path in known.items()}
    found = []
    for name, targets in sorted(graph.items()):
        top = name.split(".")[0]
        is_migration = ".migrations." in f".{name}."
        for target in sorted(targets):
            other = target.split(".")[0]
            if other in MAY_IMPORT and other != top and other not in MAY_IMPORT[top]:
                found.append(f"{name} imports {target}: {top} may not import {other}")
            if other in MAY_IMPORT and target.split(".")[1:2] == ["views"] and name not in WIRING:
                found.append(f"{name} imports the view module {target}: only {', '.join(sorted(WIRING))} may")
            if other in SEAMS and name not in SEAMS[other] and not is_migration:
                found.append(f"{name} imports {other}: only {', '.join(sorted(SEAMS[other]))} may")
    found += [f"an import circle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each group of modules that import each other (Tarjan's strongly connected components)."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group) + [sorted(group)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_every_import_runs_down_the_layers_and_nothing_runs_in_a_circle():
    assert problems(ROOT) == []


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"catalog/sync.py": "from cleanup import run\n", "cleanup/run.py": ""}, "catalog may not import cleanup"),
        ({"registry/client.py": "def f():\n    from catalog import sync\n", "catalog/sync.py": ""}, "may not import"),
        ({"cleanup/run.py": "from cleanup.views import deletion\n", "cleanup/views/deletion.py": ""}, "view module"),
        ({"api/views/gc.py": "from api.views import deletes\n", "api/views/deletes.py": ""}, "view module"),
        ({"catalog/a.py": "from catalog import b\n", "catalog/b.py": "from catalog import a\n"}, "import circle"),
        ({"catalog/sync.py": "import requests\n"}, "only registry.bridge, registry.client, webhooks.delivery may"),
        ({"accounts/backends.py": "import bcrypt\n"}, "only registry.htpasswd may"),
    ],
)
def test_the_check_finds_a_wrong_way_import_a_view_import_a_circle_and_a_second_seam(tmp_path, files, expected):
    found = problems(write(tmp_path, files))
    assert any(expected in problem for problem in found), found


def test_the_image_copies_every_package_the_dashboard_runs():
    """The image holds what .dockerignore lets through (devtools/ stays out): a package left out is an image whose
    server stops at its first import."""
    allowed = set(re.findall(r"^!(\w+)$", (ROOT / ".dockerignore").read_text(), re.M))
    assert set(MAY_IMPORT) - {"devtools"} <= allowed
    assert "devtools" not in allowed
