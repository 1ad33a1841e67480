"""The package as users install it: every subpackage listed, and the built wheel importable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from .helpers import ROOT

ROOT_FOLDERS = ("specs", "engine", "operators", "api", "schemas")


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    """``agentform.<folder>.<sub>`` for every folder holding an ``__init__.py``."""
    found = {"agentform"}
    for folder in ROOT_FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            found.add("agentform." + ".".join(rel.parts))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(_setuptools_config()["packages"])
    missing = sorted(_packages_on_disk() - listed)
    assert not missing, (
        f"add these to [tool.setuptools] packages in pyproject.toml, or `pip install .` "
        f"leaves them out: {missing}"
    )
    stale = sorted(listed - _packages_on_disk())
    assert not stale, f"pyproject.toml lists packages that do not exist: {stale}"


def test_package_dir_maps_the_root_folders():
    mapping = _setuptools_config()["package-dir"]
    assert mapping["agentform"] == "_agentform"
    for folder in ROOT_FOLDERS:
        assert mapping[f"agentform.{folder}"] == folder


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy of the sources (the work tree gets no build/ folder)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("_agentform", *ROOT_FOLDERS):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = list(out.glob("agentform-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_ships_schemas_and_console_script(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    for schema in (ROOT / "schemas").glob("*.json"):
        assert f"agentform/schemas/{schema.name}" in names
    assert "agentform = agentform.api.cli:main" in scripts
    # Data files (SQL migrations, templates, schemas) ship too: a missing package-data
    # pattern would break `pip install .` while the editable install still works.
    data = [
        path.relative_to(ROOT)
        for folder in ROOT_FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    unshipped = [str(rel) for rel in data if f"agentform/{rel.as_posix()}" not in names]
    assert not unshipped, f"add to [tool.setuptools.package-data] in pyproject.toml: {unshipped}"
    # Nothing from the work tree's other folders leaks into the wheel.
    assert not [n for n in names if n.startswith(("tests/", "examples/", "bench/"))]


def test_every_subpackage_imports_from_the_wheel(wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    packages = sorted(_setuptools_config()["packages"])
    # The unzipped wheel comes first on sys.path, ahead of the editable install's finder;
    # each package must then load from there, not from the work tree.
    code = (
        "import importlib, json, sys\n"
        f"found = {{name: importlib.import_module(name).__file__ for name in {packages!r}}}\n"
        "from importlib.resources import files\n"
        "found['schema'] = str(files('agentform.schemas') / 'manifest.json')\n"
        "print(json.dumps(found))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    outside = {name: path for name, path in found.items() if not path.startswith(str(site))}
    assert not outside, f"loaded from outside the wheel: {outside}"
    assert json.loads(Path(found["schema"]).read_text())["title"] == "agentform manifest"
