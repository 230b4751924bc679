"""Fixtures shared by the whole suite: an isolated environment and small configs."""

from __future__ import annotations

import os

import pytest
from corecall_testing import AGENT_ON_ROUTE_M, config_dict, write_toml

from corecall.cli import main
from corecall.config import parse_config

# The Asterisk lab fixtures (lab_environment, lab, fresh_lab), for every test directory.
pytest_plugins = ["corecall_testing.lab_fixtures"]

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


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL cluster per test session (``corecall_testing.pg_server``);
    ``pg_server.create_schema()`` gives a fresh, empty schema's DSN. Without PostgreSQL
    installed its tests are skipped loudly, or fail when ``$CI`` is set."""
    from corecall_testing.pg_server import pg_server_or_skip

    server = pg_server_or_skip()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_config(tmp_path):
    def make(**sections):
        return parse_config(config_dict(tmp_path, **sections), path=None)

    return make


@pytest.fixture
async def started_calls(make_config):
    """Build apps with an authorized agent on route M and a started CallManager.

    ``await started_calls(extra_plugins=[(name, plugin), ...], **config_sections)`` returns
    ``(app, manager)``; the agent is ``AGENT_ON_ROUTE_M`` (+12125550111, "Ann"). Every
    manager is stopped and every app closed when the test ends.
    """
    from corecall.agents import AgentAdmin
    from corecall.app import App

    built = []

    async def make(*, extra_plugins=(), **sections):
        app = App(make_config(**sections), extra_plugins=list(extra_plugins))
        admin = AgentAdmin(app)
        admin.add(AGENT_ON_ROUTE_M, "+12125550111", "Ann", authorized=True, actor="test")
        admin.set_route(AGENT_ON_ROUTE_M, "M", actor="test")
        manager = app.call_manager()
        await manager.start()
        built.append((app, manager))
        return app, manager

    yield make
    for app, manager in built:
        await manager.stop()
        app.close()


@pytest.fixture
def plugin_site(tmp_path, monkeypatch):
    """A directory on sys.path to install test distributions into
    (``corecall_testing.install_distribution``)."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    return path


# ----------------------------------------------------------------------------- summary
# The README's test command must show that the real-server suites ran: one line per marker.
_REAL_SERVER_MARKERS = {"postgres": "real PostgreSQL", "lab": "Asterisk lab"}
_outcomes: dict[str, dict[str, int]] = {m: {} for m in _REAL_SERVER_MARKERS}
_PROPERTY = "real_server"  # in each report's user_properties: they reach pytest-xdist's controller


def pytest_collection_modifyitems(items):
    for item in items:
        for marker in _REAL_SERVER_MARKERS:  # markers, not keywords: tests/lab is a directory
            if item.get_closest_marker(marker) is not None:
                item.user_properties.append((_PROPERTY, marker))


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    marker = dict(report.user_properties).get(_PROPERTY)
    if marker is not None:
        counts = _outcomes[marker]
        counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter):
    for marker, label in _REAL_SERVER_MARKERS.items():
        counts = _outcomes[marker]
        if counts:
            parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            terminalreporter.write_line(f"tests against the {label} ({marker}): {parts}")


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run the CLI in-process (``corecall.cli.main``) against a fresh config: ``cli(*args)``
    returns (exit code, stdout, stderr); ``cli.config_path`` is the config file."""
    path = write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))
    monkeypatch.setenv("CORECALL_CONFIG", str(path))

    def run(*args: str):
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    run.config_path = path  # type: ignore[attr-defined]
    return run
