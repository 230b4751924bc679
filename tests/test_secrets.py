"""No secret is ever printed or logged (issue #7, finding 5).

Marker secrets (AMI secret, bot token, api hash, the password in a PostgreSQL DSN) are put
through the error paths: malformed secrets (a stray CR from a CRLF env file), wrong types in
the config file, a PBX that refuses the login, a PBX that accepts it (with verbose logging,
where panoramisk logs whole actions), an unreachable PostgreSQL, a malformed DSN. Everything
the ``corecall`` program prints (stdout and stderr, which carries its log) is scanned, as are
exception texts, reprs and log records in-process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import urllib.parse

import pytest
from corecall_testing import config_dict, write_toml
from corecall_testing.ami import FakeAmi, ami_sections, server_of

from corecall import redaction
from corecall.app import App
from corecall.config import load_config, parse_config
from corecall.errors import ConfigError

AMI = "Tr0ub4dor-ami-MARKER-1"
TOKEN = "123456:bot-token-MARKER-2-shaped-like-a-real-one"
API_HASH = "f00dfeed0a1b2c3d4e5f60718293a4b5"  # 32 hex digits, as real ones
PG_PASSWORD = "pg-pass-MARKER-4"
MARKERS = (AMI, TOKEN, API_HASH, PG_PASSWORD)


def leaks(text: str, markers=MARKERS) -> list[str]:
    """Every marker (or a telling piece of it) found in ``text``, in any escaped form."""
    found = []
    for marker in markers:
        for form in (marker, repr(marker)[1:-1], urllib.parse.quote(marker), "MARKER"):
            if form in text:
                found.append(f"{marker} as {form!r}")
                break
    return found


def secret_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORECALL_")}
    env.update(
        CORECALL_BOT_TOKEN=TOKEN, CORECALL_API_ID="12345", CORECALL_API_HASH=API_HASH,
        CORECALL_AMI_SECRET=AMI, PYTHONUNBUFFERED="1",
    )  # fmt: skip
    env.update(extra)
    return env


async def run_corecall(config: os.PathLike, *args: str, env: dict[str, str]) -> tuple[int, str]:
    """``corecall --config CONFIG ARGS`` as a program; (exit code, stdout + stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "corecall", "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(errors="replace")


def ami_config(tmp_path, port: int, **server) -> os.PathLike:
    sections = ami_sections({"pbx1": server_of(port=port, action_timeout=0.5, **server)})
    raw = config_dict(tmp_path, **sections)
    # From the environment, like production.
    del raw["plugins"]["asterisk_ami"]["servers"]["pbx1"]["secret"]
    return write_toml(tmp_path / "corecall.toml", raw)


# ------------------------------------------------------------------ the program's output


@pytest.mark.parametrize("command", [("-v", "asterisk", "check"), ("-v", "run")])
async def test_a_pbx_refusing_the_login_prints_no_secret(tmp_path, command):
    async with FakeAmi(secret="the-right-one") as ami:
        code, out = await run_corecall(ami_config(tmp_path, ami.port), *command, env=secret_env())
    assert code == 1, out
    assert "Authentication failed" in out or "secret" in out.lower(), out
    assert ami.named("login") and ami.named("login")[0]["Secret"] == AMI  # it was sent
    assert leaks(out) == [], out


async def test_verbose_logging_of_a_working_pbx_prints_no_secret(tmp_path):
    async with FakeAmi(secret=AMI) as ami:
        code, out = await run_corecall(
            ami_config(tmp_path, ami.port), "-v", "asterisk", "check", env=secret_env()
        )
    assert ami.named("login"), out
    assert leaks(out) == [], out
    assert code in (0, 1)  # the fake PBX can't answer every check; the output is the point


@pytest.mark.parametrize(
    "variable", ["CORECALL_AMI_SECRET", "CORECALL_BOT_TOKEN", "CORECALL_API_HASH"]
)
@pytest.mark.parametrize("junk", ["\r", "\n", "\r\n", "\t", "\x1b[2J"])
async def test_a_secret_with_control_characters_is_refused_by_name(tmp_path, variable, junk):
    env = secret_env(**{variable: dict(zip(
        ["CORECALL_AMI_SECRET", "CORECALL_BOT_TOKEN", "CORECALL_API_HASH"],
        [AMI, TOKEN, API_HASH], strict=True))[variable] + junk})  # fmt: skip
    code, out = await run_corecall(ami_config(tmp_path, 1), "asterisk", "check", env=env)
    assert code == 1
    assert variable in out and "control character" in out, out
    assert "Traceback" not in out and leaks(out) == [], out


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://corecall:{PG_PASSWORD}@127.0.0.1:1/corecall",  # nobody listens
        f"host=127.0.0.1 port=1 user=corecall password={PG_PASSWORD} dbname=corecall",
        f"postgresql://corecall:{PG_PASSWORD}@127.0.0.1:notaport/corecall",  # malformed
        f"host=127.0.0.1 password='{PG_PASSWORD}",  # malformed (unterminated quote)
    ],
)
async def test_store_errors_print_no_database_password(tmp_path, dsn):
    path = write_toml(
        tmp_path / "corecall.toml", config_dict(tmp_path, store={"backend": "postgres"})
    )
    code, out = await run_corecall(
        path, "-v", "agents", "list", env=secret_env(CORECALL_POSTGRES_DSN=dsn)
    )
    assert code == 1 and "Traceback" not in out, out
    assert leaks(out) == [], out


# ------------------------------------------------------------------ in-process


def test_config_objects_and_config_errors_show_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("CORECALL_POSTGRES_DSN", f"postgresql://u:{PG_PASSWORD}@h/db")
    for name, value in (("BOT_TOKEN", TOKEN), ("API_HASH", API_HASH), ("AMI_SECRET", AMI)):
        monkeypatch.setenv(f"CORECALL_{name}", value)
    config = parse_config(
        config_dict(tmp_path, **ami_sections({"pbx1": server_of(port=1)})), path=None
    )
    assert leaks(repr(config)) == [] and leaks(str(config)) == []
    assert set(config.secrets()) >= set(MARKERS)
    # A plugin's secret written in the file: not in the repr of the config, of the parsed
    # options or of the server the link uses.
    monkeypatch.delenv("CORECALL_AMI_SECRET")
    raw = config_dict(tmp_path, **ami_sections({"pbx1": server_of(port=1, secret=AMI)}))
    raw["store"] = {"backend": "postgres", "postgres_dsn": f"postgresql://u:{PG_PASSWORD}@h/d"}
    monkeypatch.delenv("CORECALL_POSTGRES_DSN")
    app = App(parse_config(raw, path=None))
    from corecall_asterisk.options import AmiServerConfig

    server = app.plugin_options("asterisk_ami").servers["pbx1"]
    assert server.secret == AMI
    for shown in (repr(app.config), repr(server), repr(AmiServerConfig.of("pbx1", server))):
        assert leaks(shown) == [], shown
    monkeypatch.setenv("CORECALL_AMI_SECRET", AMI)
    monkeypatch.setenv("CORECALL_POSTGRES_DSN", f"postgresql://u:{PG_PASSWORD}@h/db")
    # A secret of the wrong type in the file is named, not quoted.
    for env in ("CORECALL_AMI_SECRET", "CORECALL_BOT_TOKEN", "CORECALL_API_HASH"):
        monkeypatch.delenv(env)
    for table, key in (("bot", "token"), ("bot", "api_hash"), ("servers", "secret")):
        raw = config_dict(tmp_path, **ami_sections({"pbx1": server_of(port=1)}))
        servers = raw["plugins"]["asterisk_ami"]["servers"]
        target = servers["pbx1"] if table == "servers" else raw[table]
        target[key] = 918273645546372819
        path = write_toml(tmp_path / f"{key}.toml", raw)
        with pytest.raises(ConfigError) as error:
            _ = App(load_config(str(path))).options  # plugin tables are validated here
        assert "918273645546372819" not in str(error.value) and key in str(error.value)


def test_the_logging_filter_hides_secrets_in_messages_arguments_and_tracebacks():
    redactor = redaction.Redactor([AMI + "\r", TOKEN])
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("secret-test")
    logger.addHandler(handler)
    logger.propagate = False
    filt = redaction.install(redactor, logger)
    try:
        # What panoramisk logs at INFO when it queues an action: the whole action.
        logger.info('Adding action "%s" to awaiting list: %s', "login",
                    {"Action": "Login", "Secret": AMI + "\r"})  # fmt: skip
        try:
            raise ValueError(f"bad header: {AMI!r} and token {TOKEN}")
        except ValueError:
            logger.exception("failed")
        logger.warning("url %s", urllib.parse.quote(TOKEN, safe=""))
    finally:
        redaction.uninstall(filt, logger)
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert "***" in text and "Traceback" in text
    assert leaks(text) == [], text


def test_the_injection_guard_names_a_secret_header_without_its_value():
    """The issue's instance: a stray CR at the end of the AMI secret used to print it whole
    (``AMI header Secret contains CR, LF or NUL: 'Tr0ub4dor-…\\r'``)."""
    from corecall_asterisk.actions import check_header

    from corecall.errors import UnsafeValueError

    for header in ("Secret", "Key"):
        with pytest.raises(UnsafeValueError) as refused:
            check_header(header, AMI + "\r")
        assert f"AMI header {header} contains CR, LF or NUL" in str(refused.value)
        assert leaks(str(refused.value)) == [] and leaks(repr(refused.value)) == []
    with pytest.raises(UnsafeValueError, match=r"'12\\r'"):  # other values help debugging
        check_header("Exten", "12\r")


def test_plugin_secrets_from_the_file_or_the_environment_are_redacted(tmp_path, monkeypatch):
    """Not only the core's secrets: a plugin's ([plugins.webhooks] secret, any *_key /
    *_token / *password key, in any nested table) from the file or by the environment rule."""
    raw = config_dict(tmp_path)
    raw["plugins"]["webhooks"] = {"urls": ["http://127.0.0.1:9/"], "secret": "FILE-MARKER-1"}
    raw["plugins"]["night"] = {"desk": {"api_key": "FILE-MARKER-2"}, "label": "not secret"}
    config = parse_config(raw, path=None)
    assert {"FILE-MARKER-1", "FILE-MARKER-2"} <= set(config.secrets())
    assert "not secret" not in config.secrets()
    monkeypatch.setenv("CORECALL_PLUGINS_WEBHOOKS_SECRET", "ENV-MARKER-3")
    assert "ENV-MARKER-3" in redaction.environment_secrets()
    redactor = redaction.Redactor(config.secrets() + redaction.environment_secrets())
    text = redactor.redact("signing with FILE-MARKER-1, FILE-MARKER-2 and ENV-MARKER-3")
    assert "MARKER" not in text


URL_WITH_CREDENTIALS = "http://hook-user:URL-MARKER-1@127.0.0.1:9/fail?token=URL-MARKER-2&x=1"


def test_credentials_inside_urls_are_secrets_wherever_the_url_is_configured(monkeypatch, tmp_path):
    """A receiver URL with Basic-auth user-info or a ?token= carries a credential although
    its key (``urls``) does not name a secret: the kind is any configured URL."""
    raw = config_dict(tmp_path)
    raw["plugins"]["webhooks"] = {"urls": [URL_WITH_CREDENTIALS], "secret": "signing-key-1"}
    raw["plugins"]["night"] = {"pager": {"endpoint": "https://p:URL-MARKER-3@pager.example/"}}
    config = parse_config(raw, path=None)
    assert {"URL-MARKER-1", "URL-MARKER-2", "URL-MARKER-3"} <= set(config.secrets())
    monkeypatch.setenv("CORECALL_PLUGINS_WEBHOOKS_URLS", '["https://u:ENV-MARKER-4@h.example/"]')
    assert "ENV-MARKER-4" in redaction.environment_secrets()
    assert redaction.mask_url(URL_WITH_CREDENTIALS) == (
        "http://hook-user:***@127.0.0.1:9/fail?token=***&x=1"
    )
    assert redaction.url_credentials("https://receiver.example/corecall?page=2") == []


@pytest.mark.parametrize(
    "args",
    [
        ("config", "show"),
        ("config", "show", "--json"),
        ("webhooks", "list"),
        ("webhooks", "list", "--json"),
        ("webhooks", "test"),  # the receiver is down: the error line names the URL
        ("webhooks", "redeliver", "some-id", "--url", "http://other:URL-MARKER-1@x.example/"),
    ],
)
def test_no_command_prints_a_credential_inside_a_configured_url(
    tmp_path, monkeypatch, capsys, args
):
    raw = config_dict(tmp_path)
    raw["plugins"]["webhooks"] = {"urls": [URL_WITH_CREDENTIALS], "secret": "signing-key-1"}
    path = write_toml(tmp_path / "corecall.toml", raw)
    monkeypatch.setenv("CORECALL_CONFIG", str(path))
    from corecall.cli import main
    from corecall.domain import OutboxMessage, utcnow

    app = App(load_config(None))
    try:  # one delivery that failed, as the running service leaves it
        app.store.outbox_add([OutboxMessage(URL_WITH_CREDENTIALS, "e1", "call.queued", "{}")])
        seqs = [m.seq for m in app.store.outbox_pending(URL_WITH_CREDENTIALS)]
        error = f"ConnectError: cannot reach {URL_WITH_CREDENTIALS}"
        app.store.outbox_mark_failed(seqs, error, utcnow())
    finally:
        app.close()
    main(list(args))
    out, err = capsys.readouterr()
    assert "127.0.0.1:9" in out + err or args[:2] == ("webhooks", "redeliver")
    assert "URL-MARKER" not in out + err, out + err
