"""Fixtures shared by the whole suite: an isolated environment and small configs."""

from __future__ import annotations

import os

import pytest
from corecall_testing import config_dict

from corecall.config import parse_config

_SECRET_ENV = (
    "CORECALL_CONFIG", "CORECALL_BOT_TOKEN", "CORECALL_API_ID", "CORECALL_API_HASH",
    "CORECALL_AMI_SECRET", "CORECALL_POSTGRES_DSN", "CORECALL_DATA_DIR",
)  # fmt: skip


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """No test reads the developer's real config, data dir or secrets."""
    for name in list(os.environ):
        if name in _SECRET_ENV or name.startswith("CORECALL_AMI_SECRET_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))


@pytest.fixture
def make_config(tmp_path):
    def make(**sections):
        return parse_config(config_dict(tmp_path, **sections), path=None)

    return make
