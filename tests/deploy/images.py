"""Images for the deploy tests, built with no registry and no network (FIELD-NOTES, podman).

``python_base(podman)`` makes ``PYTHON_BASE``: the podman harness's busybox image
(tests/containers/podman.py) plus this host's Debian Python 3.11 copied in (the interpreter,
its standard library, the shared libraries it and its extension modules link, and the pip
wheel ``ensurepip`` installs). ``engine_image(podman, base)`` builds deploy/Dockerfile with
``BASE`` set to it, pip installing offline from a wheelhouse made on the host from the
project's own dependency list (``wheelhouse``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.containers.podman import BASE_IMAGE, PodmanService

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3.11"
PYTHON_BASE = "localhost/agentform-test-python:3.11"
ENGINE_IMAGE = "localhost/agentform:test"
# What the Dockerfile's COPY takes (the allowlist in .dockerignore).
SOURCES = ("pyproject.toml", "README.md", "_agentform", "specs", "engine", "operators", "api", "schemas")
# What manylinux wheels may expect from the system (PEP 599's list, those not linked above).
MANYLINUX_LIBS = tuple(f"/lib/x86_64-linux-gnu/{name}" for name in (
    "libgcc_s.so.1", "libstdc++.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1"))
_SKIP_STDLIB = shutil.ignore_patterns("test", "tests", "idlelib", "tkinter", "turtledemo", "__pycache__")


def _linked_libraries(binaries: list[Path]) -> set[str]:
    found = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) > parts.index("=>") + 1 and parts[parts.index("=>") + 1].startswith("/"):
                found.add(parts[parts.index("=>") + 1])
            elif parts and parts[0].startswith("/"):
                found.add(parts[0])   # the loader
    return found


def python_base(podman: PodmanService, folder: Path) -> str:
    """Build ``PYTHON_BASE`` from the harness's base image and the host's Python; its tag."""
    root = folder / "root"
    stdlib = Path("/usr/lib/python3.11")
    shutil.copytree(stdlib, root / stdlib.relative_to("/"), symlinks=True, ignore=_SKIP_STDLIB)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(PYTHON, root / "usr/bin/python3.11")
    os.symlink("python3.11", root / "usr/bin/python3")
    shutil.copytree("/usr/share/python-wheels", root / "usr/share/python-wheels")
    binaries = [Path(PYTHON), *sorted((stdlib / "lib-dynload").glob("*.so"))]
    for lib in _linked_libraries(binaries) | {p for p in MANYLINUX_LIBS if os.path.exists(p)}:
        target = root / lib.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), target)   # the real file under the name the loader asks for
    (folder / "Containerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY root/ /\n")
    podman.podman("build", "--pull=never", "--network=none", "-t", PYTHON_BASE, str(folder), timeout=600)
    return PYTHON_BASE


def wheelhouse(folder: Path, extras: tuple[str, ...]) -> Path:
    """Wheels of the project's dependencies (and its build backend) for ``extras``, made on the
    host with its own pip configuration; the image build then installs with --no-index."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    wanted += ["setuptools>=68", "wheel"]
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(folder), *wanted],
                   check=True, capture_output=True, timeout=900)
    return folder


def engine_image(podman: PodmanService, base: str, context: Path, wheels: Path, extras: str) -> str:
    """deploy/Dockerfile built over ``base`` from a copy of the sources; its tag."""
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, context / name)
    shutil.copytree(ROOT / "deploy", context / "deploy")
    shutil.copy2(ROOT / ".dockerignore", context / ".dockerignore")
    shutil.copytree(wheels, context / "wheels")
    podman.podman("build", "--pull=never", "--network=none", "-f", str(context / "deploy" / "Dockerfile"),
                  "--build-arg", f"BASE={base}", "--build-arg", f"EXTRAS={extras}",
                  "--build-arg", "PIP_OPTIONS=--no-index --find-links /src/wheels",
                  "-t", ENGINE_IMAGE, str(context), timeout=900)
    return ENGINE_IMAGE
