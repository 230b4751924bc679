"""The CLI as a program (subprocesses): errors, --debug, --version, --config anywhere,
completion and --help as people read them."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from corecall_testing import config_dict, write_toml


def corecall(*args: str, env: dict | None = None, timeout: float = 90):
    full_env = {**os.environ, "COLUMNS": "100", **(env or {})}
    full_env.pop("CORECALL_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "corecall", *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env)  # fmt: skip


@pytest.fixture
def config(tmp_path) -> Path:
    return write_toml(tmp_path / "corecall.toml", config_dict(tmp_path))


# --------------------------------------------------------------------------- unexpected errors


class NotTelegram:
    """A TCP server on loopback that accepts and hangs up: port 443 answering something
    that is not Telegram (a captive portal, an intercepting proxy)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.recv(1024)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_run_against_something_that_is_not_telegram_says_what_in_one_line(tmp_path, config):
    from telethon.sessions import SQLiteSession

    server = NotTelegram()
    try:
        session = SQLiteSession(str(tmp_path / "telegram.session"))
        session.set_dc(2, "127.0.0.1", server.port)
        session.save()
        session.close()
        proc = corecall("--config", str(config), "run", env={
            "CORECALL_BOT_TOKEN": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0",
            "CORECALL_API_ID": "12345",
            "CORECALL_API_HASH": "0123456789abcdef0123456789abcdef"})  # fmt: skip
    finally:
        server.close()
    assert server.accepted >= 1
    assert proc.returncode == 1
    err = " ".join(proc.stderr.split())
    assert "aborted" not in err.lower() and "Traceback" not in err
    assert f"cannot reach Telegram's servers at 127.0.0.1:{server.port}" in err
    assert "not Telegram" in err and "port 443" in err
    assert "Attempt" not in err  # Telethon's retry warnings stay out of it
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr


def test_an_unexpected_error_is_one_line_naming_the_traceback_file(tmp_path, config):
    # A store file that is a directory: sqlite3 fails in a way corecall has no message for.
    data = tmp_path / "weird"
    raw = config_dict(tmp_path)
    raw["store"]["sqlite_path"] = str(data)
    data.mkdir()
    path = write_toml(tmp_path / "bad.toml", raw)
    proc = corecall("--config", str(path), "agents", "list")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "aborted" not in proc.stderr.lower()
    match = re.search(r"full traceback in (\S+) \(run with --debug", " ".join(proc.stderr.split()))
    if match is None:  # the store turned it into a deliberate error: one clear line is fine
        assert proc.stderr.startswith("error: ") and len(proc.stderr.splitlines()) <= 3
        return
    assert "Traceback (most recent call last)" in Path(match[1]).read_text()
    debug = corecall("--config", str(path), "agents", "list", "--debug")
    assert "Traceback (most recent call last)" in debug.stderr


def test_an_eof_inside_a_command_is_not_aborted(monkeypatch, capsys, tmp_path):
    """click turns EOFError into a bare Abort; main() names the real cause instead."""
    import corecall.cli.admin_commands as admin_commands
    from corecall.cli import main

    def boom(*_a, **_k):
        raise EOFError("stream ended")

    monkeypatch.setenv("CORECALL_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(admin_commands, "_admin", boom)
    code = main(["--config", str(write_toml(tmp_path / "c.toml", config_dict(tmp_path))),
                 "agents", "revoke", "5"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "aborted" not in err.lower()
    assert "unexpected EOFError: stream ended" in " ".join(err.split())
    assert (tmp_path / "logs" / "cli-errors.log").read_text().count("EOFError") >= 1


# --------------------------------------------------------------------------- --version


def test_version_lists_plugin_distributions_and_phonenumbers():
    proc = corecall("--version")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert re.fullmatch(r"corecall \S+", lines[0])
    for dist in ("corecall-route-main", "corecall-route-dev", "corecall-store-sqlite"):
        assert any(line.split()[-2:-1] == [dist] for line in lines), proc.stdout
    import phonenumbers

    assert f"phonenumbers {phonenumbers.__version__}" in proc.stdout


# --------------------------------------------------------------------------- --config anywhere


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "{c}", "agents", "list", "--json"],
        ["agents", "--config", "{c}", "list", "--json"],
        ["agents", "list", "--json", "--config", "{c}"],
        ["agents", "list", "--config={c}", "--json"],
        ["agents", "list", "-c", "{c}", "--json"],
    ],
)
def test_config_is_accepted_wherever_it_is_put(config, args):
    proc = corecall(*[a.format(c=config) for a in args])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args", [["agents", "list", "--config"], ["agents", "list", "-c"], ["--config"]]
)
def test_a_config_option_without_its_value_is_a_usage_error_naming_it(args):
    proc = corecall(*args)
    assert proc.returncode == 2
    option = args[-1]
    assert (
        proc.stderr.strip()
        == f"error: option {option} needs a value, e.g. {option} /etc/corecall.toml"
    )
    assert "No such option" not in proc.stderr


def test_a_value_that_looks_like_a_global_option_after_double_dash_is_left_alone(config):
    proc = corecall("--config", str(config), "number", "check", "--json", "--", "--debug")
    assert proc.returncode == 1  # "--debug" was checked as a number, and refused
    assert '"reason": "not_a_number"' in proc.stdout


# --------------------------------------------------------------------------- completion, help


def test_shell_completion_is_available():
    proc = corecall("--help")
    assert "--install-completion" in proc.stdout
    done = subprocess.run(
        [str(Path(sys.executable).parent / "corecall")], capture_output=True, text=True,
        env={**os.environ, "_CORECALL_COMPLETE": "complete_bash", "COMP_WORDS": "corecall ag",
             "COMP_CWORD": "1"}, timeout=60,
    )  # fmt: skip
    assert "agents" in done.stdout


def main_commands() -> list[str]:
    """Every top-level command: the core's own and those of every installed plugin, as
    `corecall --help` and `corecall plugins list` know them (not a list kept by hand)."""
    from corecall.cli import build_cli, core_command_names

    core = sorted(core_command_names(build_cli()))
    listing = json.loads(corecall("plugins", "list", "--json").stdout)
    return core + sorted({command for plugin in listing for command in plugin["commands"]})


def all_help_pages(commands: list[str]):
    pages = {"": corecall("--help").stdout}
    for command in commands:
        pages[command] = corecall(command, "--help").stdout
    for sub in ("add", "set-caller-id", "set-phone", "list"):
        pages[f"agents {sub}"] = corecall("agents", sub, "--help").stdout
    pages["number check"] = corecall("number", "check", "--help").stdout
    pages["asterisk render"] = corecall("asterisk", "render", "--help").stdout
    return pages


def test_help_is_plain_and_every_main_command_has_an_example():
    """README: every main command's --help ends with examples; every main command, the
    core's and installed plugins' (tester5: health, config and policy had none, and the
    test looked only at the commands that had some)."""
    commands = main_commands()
    assert {"health", "config", "policy", "agents", "asterisk", "dnc"} <= set(commands)
    for name, page in all_help_pages(commands).items():
        assert page.startswith("Usage: corecall"), name
        for label in ("<bool>", "<str>", "<int", "<float", "{text}", "{telegram_id}"):
            assert label not in page, (name, label)
        if "Commands:" in page:  # summaries are whole sentences, not cut at 45 characters
            listing = page.split("Commands:")[1].split("Examples:")[0]
            assert not re.search(r"\.\.\.$", listing, re.M), (name, listing)
        if name in commands:
            examples = page.partition("\n  Examples:\n")[2]
            assert examples, f"`corecall {name} --help` does not end with examples"
            lines = examples.splitlines()
            assert lines and all(
                line.startswith(("    corecall ", "    CORECALL", "    printf ")) for line in lines
            ), (name, examples)


def test_help_paragraphs_are_not_hard_wrapped_mid_sentence():
    """Wider terminals get longer lines: the text is re-flowed, not wrapped in the source."""
    narrow = corecall("call", "--help", env={"COLUMNS": "60"}).stdout
    wide = corecall("call", "--help", env={"COLUMNS": "120"}).stdout
    prose = [line for line in narrow.splitlines() if not line.startswith("    corecall ")]
    assert max(len(line) for line in prose) <= 60  # examples are never re-wrapped
    assert max(len(line) for line in wide.splitlines()) > 100
    assert len(wide.splitlines()) < len(narrow.splitlines())


def test_the_readme_shows_the_real_top_level_help():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```text\n\$ corecall --help\n(.*?)```", readme, re.S)
    assert block, "README must show `corecall --help` output"
    assert block[1] == corecall("--help", env={"COLUMNS": "100"}).stdout
