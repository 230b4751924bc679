"""scripts/bootstrap.sh: one virtualenv stamp for demo and test, progress while installing.

Run with a fake virtualenv (CORECALL_VENV) whose ``python`` records each pip call, so the
real script logic runs without installing anything.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../calls.log"
if [ "$*" != "-m pip install -q --upgrade pip" ]; then
    echo "Collecting phonenumbers>=9.0.43"
    echo "Building editable for corecall (pyproject.toml)"
    echo "  some noise that is not shown"
    echo "Successfully installed corecall-0.1.0"
fi
"""


def bootstrap(venv: Path, mode: str) -> subprocess.CompletedProcess:
    script = f'source "{ROOT}/scripts/bootstrap.sh"; bootstrap_python {mode}'
    env = {**os.environ, "CORECALL_VENV": str(venv)}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                          timeout=60)  # fmt: skip


def pip_installs(venv: Path) -> list[str]:
    log = venv / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if "install" in line and "--upgrade pip" not in line]


def make_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return venv


def test_switching_between_demo_and_test_does_not_reinstall(tmp_path):
    venv = make_venv(tmp_path)
    assert bootstrap(venv, "test").returncode == 0
    assert len(pip_installs(venv)) == 1
    for mode in ("demo", "test", "demo"):
        proc = bootstrap(venv, mode)
        assert proc.returncode == 0, proc.stderr
        assert "installing" not in proc.stdout
    assert len(pip_installs(venv)) == 1


def test_demo_first_then_test_installs_the_test_part_once(tmp_path):
    venv = make_venv(tmp_path)
    bootstrap(venv, "demo")
    bootstrap(venv, "test")
    bootstrap(venv, "demo")
    bootstrap(venv, "test")
    installs = pip_installs(venv)
    assert len(installs) == 2
    assert "[test]" not in installs[0] and "[test]" in installs[1]


def test_installing_shows_progress(tmp_path):
    proc = bootstrap(make_venv(tmp_path), "demo")
    assert "==> installing corecall" in proc.stdout
    assert "Collecting phonenumbers>=9.0.43" in proc.stdout
    assert "Successfully installed" in proc.stdout
    assert "some noise" not in proc.stdout
    assert "s] Collecting" in proc.stdout  # with the elapsed time


def test_every_package_ships_its_type_information():
    """PEP 561: corecall and every plugin package carry ``py.typed`` and declare it as package
    data, so a third-party plugin's mypy checks against our annotations (the test command
    runs mypy over the same packages)."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    projects = {root / "pyproject.toml": ["corecall"]}
    for pyproject in sorted((root / "plugins").glob("*/pyproject.toml")):
        setuptools = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
        projects[pyproject] = setuptools["packages"]
    assert len(projects) > 5
    for pyproject, packages in projects.items():
        declared = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
        for package in packages:
            assert (pyproject.parent / package / "py.typed").is_file(), package
            assert "py.typed" in declared.get(package, []), (pyproject, package)
