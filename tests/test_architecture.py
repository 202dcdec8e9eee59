"""The layout holds: the core and the store load no web framework, and the web package reads only interfaces."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from geoapp.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "geoapp"
FRAMEWORK = ("flask", "folium", "werkzeug", "flask_babel", "flask_wtf", "jinja2", "requests", "branca")


def _modules(*folders: str) -> list[str]:
    out = []
    for folder in folders:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's scripts run inside Alembic (tests/test_postgis.py upgrades a database with them)
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


CORE = ["geoapp", "geoapp.errors", "geoapp.config", *_modules("core", "store", "io")]


@pytest.mark.parametrize("module", CORE)
def test_core_and_store_modules_load_no_web_framework(module):
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        f"print(','.join(m for m in {FRAMEWORK!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert loaded.stdout.strip() == "", f"importing {module} loaded {loaded.stdout.strip()}"


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "web").rglob("*.py")), ids=lambda p: p.name)
def test_the_web_package_reads_only_the_interfaces(path):
    # views, pages, maps and the CLI go through FeatureReader, the use cases and the permission
    # policy; the in-memory index and the backends are the store's business
    reached = {m for m in _imports(path) if m.startswith(("geoapp.store.memindex", "geoapp.store.gpkg"))}
    assert reached == set(), f"{path.name} imports {reached}"


def test_only_the_web_package_imports_flask():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "web" in path.relative_to(PACKAGE).parts:
            continue
        framework = {m for m in _imports(path) if m.split(".")[0] in FRAMEWORK}
        assert framework == set(), f"{path.relative_to(PROJECT_ROOT)} imports {framework}"
