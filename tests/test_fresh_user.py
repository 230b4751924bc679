"""What a new operator meets first, run as they would (a subprocess, a fresh HOME, no
configuration file): `config show` says where each value comes from, `init` writes the
file that will hold the secrets readable by its owner only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest


@pytest.fixture
def fresh(tmp_path):
    """`corecall ...` in a fresh HOME with no configuration and no CORECALL_* variable."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORECALL_", "XDG_"))}
    env["HOME"] = str(home)

    def run(*args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "corecall", *args], capture_output=True, text=True, env=env,
            timeout=120, preexec_fn=lambda: os.umask(umask),
        )  # fmt: skip

    run.home = home
    return run


def test_config_show_without_a_file_labels_values_default(fresh):
    shown = fresh("config", "show")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("# no configuration file (") and "corecall init" in lines[0]
    assert str(fresh.home / ".config" / "corecall" / "config.toml") in lines[0]
    values = [line for line in lines[1:] if " = " in line]
    assert values and all(line.endswith("# default") for line in values), values
    as_json = json.loads(fresh("config", "show", "--json").stdout)
    assert {v["source"] for v in as_json.values()} == {"default"}


def test_init_writes_the_config_0600_even_with_a_permissive_umask(fresh):
    done = fresh("init", umask=0o000)
    assert done.returncode == 0, done.stderr
    path = fresh.home / ".config" / "corecall" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # --force over a file someone made world-readable makes it private again
    path.chmod(0o644)
    again = fresh("init", "--force")
    assert again.returncode == 0, again.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # and now `config show` names the file and labels its values "file"
    shown = fresh("config", "show").stdout.splitlines()
    assert shown[0] == f"# {path}" and any(line.endswith("# file") for line in shown)


def test_init_echoes_a_path_with_a_newline_escaped(fresh, tmp_path):
    path = tmp_path / "a\nb.toml"
    done = fresh("--config", str(path), "init")
    assert done.returncode == 0, done.stderr
    assert f"wrote {str(path)!r}" in done.stdout
    assert not any(line.startswith("b.toml") for line in done.stdout.splitlines())
