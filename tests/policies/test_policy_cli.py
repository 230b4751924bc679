"""The compliance plugins end to end through the operator CLI: `policy check`, `dnc ...`,
`plugins list/disable` (each policy from its own distribution), the repeat-call cap."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from corecall_testing import config_dict, write_toml

from corecall.app import App
from corecall.cli import main
from corecall.config import load_config
from corecall.domain import CallRecord, CallState, EndReason
from corecall.fields import check_reason

POLICIES = {
    "policy_calling_hours": "corecall-policy-calling-hours",
    "policy_dnc": "corecall-policy-dnc",
    "policy_repeat_calls": "corecall-policy-repeat-calls",
}
NY = "+1 212 555 0123"


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run the CLI against a config with the default (real) compliance settings."""
    raw = config_dict(tmp_path)
    raw.pop("plugins", None)  # the suite's any-hour window: these tests want the defaults

    def configure(**plugins):
        path = write_toml(tmp_path / "corecall.toml", {**raw, "plugins": plugins})
        monkeypatch.setenv("CORECALL_CONFIG", str(path))

    def run(*args: str):
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    configure()
    run.configure = configure
    run.store = lambda: App(load_config(None)).store
    return run


def check(cli, *args):
    code, out, err = cli("policy", "check", *args, "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def test_policy_check_refuses_7_30_am_in_new_york_and_allows_9_30(cli):
    code, result = check(cli, "--target", NY, "--at", "2026-07-01T11:30:00Z")
    assert code == 1
    assert result["ok"] is False
    assert (result["reason"], result["plugin"]) == ("outside_calling_hours", "policy_calling_hours")
    assert result["message"] == (
        "It is 7:30 am in America/New_York for this number. Calls open at 8:00 am, in 30 minutes."
    )
    steps = {c["step"]: c["ok"] for c in result["checks"]}
    assert steps["route"] and steps["number"] and steps["policy_dnc"]
    assert steps["policy_calling_hours"] is False

    code, result = check(cli, "--target", NY, "--at", "2026-07-01T13:30:00Z")
    assert code == 0
    assert result["ok"] is True and result["reason"] is None and result["message"] == ""
    assert all(c["ok"] for c in result["checks"])
    assert {"policy_calling_hours", "policy_dnc", "policy_repeat_calls"} <= {
        c["step"] for c in result["checks"]
    }


def test_policy_check_split_zone_area_and_text_output(cli):
    code, out, _ = cli("policy", "check", "--target", "(208) 555-0123", "--at",
                       "2026-07-01T14:30:00Z")  # fmt: skip
    assert code == 1
    assert "REFUSED  policy_calling_hours" in out
    assert "It is 7:30 am in America/Los_Angeles" in out
    assert out.rstrip().endswith("refused: outside_calling_hours (by policy_calling_hours)")


def test_policy_check_shows_every_refusal_and_writes_nothing(cli):
    assert cli("dnc", "add", NY)[0] == 0
    store = cli.store()
    before = len(store.audit_log(limit=1000))
    code, result = check(cli, "--target", NY, "--at", "2026-07-01T11:30:00Z")
    assert code == 1
    refused = [c["step"] for c in result["checks"] if not c["ok"]]
    assert refused == ["policy_calling_hours", "policy_dnc"] or refused == [
        "policy_dnc", "policy_calling_hours",
    ]  # fmt: skip
    assert len(store.audit_log(limit=1000)) == before  # a dry run audits nothing
    assert store.recent_calls() == []


@pytest.mark.parametrize(
    ("args", "reason", "step"),
    [
        (["--agent", "424242"], "not_authorized", "agent"),
        (["--route", "X"], "no_route", "route"),
        (["--target", "911"], "emergency", "number"),
    ],
)
def test_policy_check_earlier_steps(cli, args, reason, step):
    target = [] if "--target" in args else ["--target", NY]
    code, result = check(cli, *target, *args, "--at", "2026-07-01T16:00:00Z")
    assert code == 1 and (result["reason"], result["plugin"]) == (reason, step)


def test_policy_check_for_an_agent_uses_their_route(cli):
    store = cli.store()
    store.add_agent(501, "+12125550111", "Alice", authorized=True, actor="test")
    store.set_route(501, "D", actor="test")
    code, result = check(cli, "--target", NY, "--agent", "501", "--at", "2026-07-01T16:00:00Z")
    assert code == 0 and result["route"] == "D" and result["checks"][0]["step"] == "agent"


#: The bot's words for the agent: never what the operator at a shell reads.
AGENT_WORDING = ("ask your admin", "you ", "your ", "/setphone")


def test_policy_check_speaks_to_the_operator_about_the_agent(cli):
    """The dry run's reader is the admin at a shell: an unknown, unauthorized or phoneless
    agent, and an agent at their call limits, are described with what to run, never with
    the bot's "ask your admin"."""
    store = cli.store()
    store.add_agent(502, "+12125550112", "Bob", authorized=False, actor="test")
    store.add_agent(503, "+12125550113", "Cy", authorized=True, actor="test")
    store.add_agent(504, "+12125550114", "Di", authorized=True, actor="test")
    store._db.execute_sql("UPDATE agents SET phone = '' WHERE telegram_id = 504")
    expected = {
        "999": "Agent 999 is not on record: see `corecall agents list`",
        "502": "Agent 502 (Bob) is not authorized to place calls: `corecall agents authorize 502`",
        "504": "`corecall agents set-phone 504 NUMBER`",
    }
    for agent, says in expected.items():
        code, result = check(cli, "--target", NY, "--agent", agent, "--at", "2026-07-01T16:00:00Z")
        assert code == 1 and result["plugin"] == "agent" and says in result["message"]
        assert not any(w in result["message"].lower() for w in AGENT_WORDING), result["message"]
        code, out, _err = cli("policy", "check", "--target", NY, "--agent", agent)
        assert code == 1 and says in " ".join(out.split())
    # the call limits: a live call of agent 503 on record
    cli.configure(policy_calling_hours={"opens": "00:00", "closes": "23:59"})
    place_record(store, "+12125550177", dt.datetime.now(dt.UTC), agent=503, reason=None)
    code, result = check(cli, "--target", NY, "--agent", "503", "--route", "M")
    limits = [c for c in result["checks"] if c["reason"] in ("call_in_progress", "rate_limited")]
    assert code == 1 and limits, result
    for step in limits:
        assert step["message"].startswith("The agent ") and "[limits]" in step["message"]
        assert not any(w in step["message"].lower() for w in AGENT_WORDING), step["message"]


@pytest.mark.parametrize("bad", ["2026-07-01T11:30:00", "yesterday", "2026-13-01T00:00:00Z"])
def test_policy_check_needs_a_moment_with_its_offset(cli, bad):
    code, _out, err = cli("policy", "check", "--target", NY, "--at", bad)
    assert code == 2
    assert "expected an ISO 8601 moment with its UTC offset" in err


@pytest.mark.parametrize(
    "far",
    ["0001-01-01T00:00:00Z", "9999-12-31T20:00:00-14:00", "1969-12-31T23:59:59Z",
     "9999-01-01T00:00:00Z"],
)  # fmt: skip
def test_policy_check_refuses_a_moment_out_of_range_as_a_usage_error(cli, far):
    """Moments whose day before or week after datetime cannot hold (or no dry run needs):
    exit 2 naming the range, no traceback."""
    code, out, err = cli("policy", "check", "--target", NY, "--at", far)
    assert code == 2 and out == ""
    assert "give a moment" in err and "1970" in err and "9998" in err
    assert "Traceback" not in err and "unexpected" not in err
    for edge in ("1970-01-01T00:00:00Z", "9998-12-31T23:59:59Z"):
        assert cli("policy", "check", "--target", NY, "--at", edge, "--json")[0] in (0, 1)


# --------------------------------------------------------------------------- dnc commands


@pytest.mark.parametrize(
    "typed", ["+12125550123", "(212) 555-0123", "212-555-0123", "1 212 555 0123"]
)
def test_dnc_add_any_format_then_refused(cli, typed):
    code, out, _ = cli("dnc", "add", typed, "--reason", "asked on 2026-06-30")
    assert (code, out) == (0, "added +12125550123 to the do-not-call list\n")
    code, out, _ = cli("dnc", "add", NY)
    assert code == 0 and out.startswith("+12125550123 is already on the do-not-call list since")
    code, result = check(cli, "--target", "2125550123", "--at", "2026-07-01T16:00:00Z")
    assert (code, result["reason"], result["plugin"]) == (1, "do_not_call", "policy_dnc")
    assert "asked on" not in result["message"]
    entry = cli.store().dnc_get("+12125550123")
    assert entry.reason == "asked on 2026-06-30" and entry.added_by.startswith("cli:")


def test_dnc_remove_list_and_errors(cli):
    cli("dnc", "add", NY)
    cli("dnc", "add", "+1 646 555 0100", "--reason", "letter")
    code, out, _ = cli("dnc", "list", "--json")
    rows = json.loads(out)
    assert [r["number"] for r in rows] == ["+12125550123", "+16465550100"]
    assert rows[1]["reason"] == "letter" and rows[1]["added_by"].startswith("cli:")
    code, out, _ = cli("dnc", "list")
    assert out.splitlines()[-1] == "2 numbers on the do-not-call list"
    assert cli("dnc", "remove", "(212) 555-0123")[:2] == (
        0, "removed +12125550123 from the do-not-call list\n",
    )  # fmt: skip
    code, _out, err = cli("dnc", "remove", "(212) 555-0123")
    assert code == 1 and "is not on the do-not-call list" in err
    code, _out, err = cli("dnc", "add", "911")
    assert code == 1 and "emergency" in err.lower()
    assert cli.store().dnc_count() == 1
    actions = [e.action for e in cli.store().audit_log()]
    assert actions.count("dnc.add") == 2 and actions.count("dnc.remove") == 1


def test_dnc_import_reports_bad_lines_by_number_imports_the_rest_and_is_idempotent(cli, tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(
        b"number,reason\n"
        b"+12125550101,asked\n"
        b"(212) 555-0102\n"
        b"call me maybe\n"
        b'212-555-0103,"by letter, twice"\n'
        b"911\n"
        b"\xff\n"
        b"+12125550101\n"
    )
    code, out, _ = cli("dnc", "import", str(path), "--json")
    report = json.loads(out)
    assert code == 1  # lines were rejected; the rest is imported
    assert (report["numbers"], report["added"], report["already_listed"]) == (4, 3, 1)
    assert [(r["line"], r["text"]) for r in report["rejected"]] == [
        (4, "call me maybe"), (6, "911"), (7, "\ufffd"),
    ]  # fmt: skip
    store = cli.store()
    assert store.dnc_count() == 3
    assert store.dnc_get("+12125550103").reason == "by letter, twice"
    code, out, _ = cli("dnc", "import", str(path))
    assert code == 1
    assert out.startswith(f"imported {path}: 4 numbers read, 0 added, 4 already listed, 3 lines")
    assert "  line 4: 'call me maybe': " in out
    assert store.dnc_count() == 3


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("x" * 5000, "5000 characters long; reasons can be at most 200"),
        ("line1\nFAKE +12125550999  2026-11-29 00:00 UTC  cli:admin", "U+000A"),
        ("asked\u202enot", "U+202E"),
        ("tab\there", "U+0009"),
    ],
)
def test_dnc_reasons_are_bounded_single_line_text(cli, reason, says):
    """A reason is stored text like an agent's name: bounded, one line, no bidi overrides
    (a newline would forge a row in `dnc list`); refused with what works, nothing added."""
    code, _out, err = cli("dnc", "add", NY, "--reason", reason)
    assert code == 1 and says in err and reason not in err
    code, _out, err = cli("dnc", "import", "-", "--reason", reason)
    assert code == 1 and says in err
    assert cli.store().dnc_count() == 0


@pytest.mark.parametrize("reason", ["x" * 201, "asked\u202enot", "esc\x1b[2J"])
def test_dnc_import_rejects_a_bad_reason_by_line_and_imports_the_rest(cli, tmp_path, reason):
    path = tmp_path / "reasons.csv"
    path.write_text(f"+12125550101,fine\n+12125550102,{reason}\n", encoding="utf-8")
    code, out, _ = cli("dnc", "import", str(path), "--json")
    report = json.loads(out)
    assert code == 1 and [r["line"] for r in report["rejected"]] == [2]
    assert "reason" in report["rejected"][0]["message"]
    assert cli.store().dnc_count() == 1


def test_the_store_refuses_an_over_long_reason_itself(cli):
    with pytest.raises(Exception, match="at most 200"):
        cli.store().dnc_add("+12125550109", reason="y" * 201, actor="test")


def test_dnc_export_imports_back(cli, tmp_path):
    cli("dnc", "add", NY, "--reason", "a, b")
    cli("dnc", "add", "+1 646 555 0100")
    exported = tmp_path / "out.csv"
    assert cli("dnc", "export", "-o", str(exported))[0] == 0
    lines = exported.read_text().splitlines()
    assert lines[0] == "number,reason,added_at,added_by"
    assert lines[1].startswith('+12125550123,"a, b",')
    cli("dnc", "remove", NY)
    code, out, _ = cli("dnc", "import", str(exported), "--json")
    assert code == 0 and json.loads(out)["added"] == 1
    assert cli.store().dnc_get("+12125550123").reason == "a, b"


@pytest.mark.parametrize(
    "where, said",
    [
        ("{tmp}", "it is a directory; give a file, e.g. -o {tmp}/dnc.csv"),
        ("", "it is a directory; give a file"),  # an unset variable: Path("") is "."
        ("{tmp}/missing/x.csv", "No such file or directory"),
        ("{tmp}/afile/x.csv", "Not a directory"),
        ("/proc/x.csv", "cannot write /proc/x.csv: "),
        ("/dev/full", "No space left on device"),
    ],
)
def test_dnc_export_to_a_path_it_cannot_write_is_one_plain_line(cli, tmp_path, where, said):
    """Was 'error: unexpected IsADirectoryError …; full traceback in …' (tester5)."""
    cli("dnc", "add", NY)
    (tmp_path / "afile").write_text("")
    target = where.format(tmp=tmp_path)
    code, out, err = cli("dnc", "export", "-o", target)
    assert code == 1, out + err
    assert err.startswith("error: cannot write ") and said.format(tmp=tmp_path) in err
    assert "unexpected" not in err and "Traceback" not in err and len(err.splitlines()) == 1


#: Reasons a store may hold from before the limits existed (or written by another program):
#: each must export as one line that imports back, and never reach a terminal raw.
STORED_REASONS = {
    "+12125550101": "x" * 120_000,
    "+12125550102": "line1\nFAKE +12125550999  2026-11-29 00:00 UTC  cli:admin",
    "+12125550103": "\x1b[2J\x1b[31mred\x1b]0;title\x07 \x9b31m",
    "+12125550104": 'quoted "multi"\r\nline, with, commas',
    "+12125550105": "\u202eevil\u2028sep\ttab\x00nul",
    "+12125550106": "",
    "+12125550107": "# not a comment",
    "+12125550108": '"',
    "+12125550109": " " + "é" * 300,
}


def store_raw(store, reasons: dict[str, str], actor: str) -> None:
    """Write rows past the store's checks, as an older corecall (or another program) did."""
    rows = list(reasons.items())
    with store._session(write=True):
        for sql, params in store._dnc_insert_statements(rows, actor):
            store._db.execute_sql(sql, params)


def test_dnc_export_of_whatever_is_stored_imports_back(cli, tmp_path):
    store_raw(cli.store(), STORED_REASONS, actor="cli:\x1b[31mroot\nFAKE")
    exported = tmp_path / "out.csv"
    assert cli("dnc", "export", "-o", str(exported))[0] == 0
    data = exported.read_text(encoding="utf-8")
    assert data.count("\n") == 1 + len(STORED_REASONS)  # a header and one line a number
    assert not [c for c in data if c != "\n" and not (c.isprintable() or c == " ")]
    code, out, err = cli("dnc", "import", str(exported))
    assert (code, err) == (0, "")
    assert f"0 added, {len(STORED_REASONS)} already listed, 0 lines rejected" in out
    # the export of what was read back is the same file (nothing else is lost on the way)
    cli("dnc", "remove", "+12125550101")
    assert cli("dnc", "import", str(exported))[0] == 0
    again = tmp_path / "again.csv"
    cli("dnc", "export", "-o", str(again))
    assert [line.split(",")[:2] for line in again.read_text().splitlines()] == [
        line.split(",")[:2] for line in data.splitlines()
    ]
    # and neither export to a terminal nor `dnc list` (text or JSON) writes a control
    # character, nor a reason longer than a reason may be
    listed = json.loads(cli("dnc", "list", "--json")[1])
    assert len(listed) == len(STORED_REASONS)
    for entry in listed:
        assert check_reason(entry["reason"]) == entry["reason"], entry
        assert entry["added_by"].isprintable() and entry["added_by"].startswith("cli:")
    for args in (("dnc", "export"), ("dnc", "list"), ("dnc", "list", "--json")):
        code, out, _ = cli(*args)
        assert code == 0 and "\x1b" not in out and "\x9b" not in out and "\u202e" not in out
    code, out, _ = cli("dnc", "list")
    assert len(out.splitlines()) == len(STORED_REASONS) + 1 and "FAKE +12125550999" in out
    assert not any(line.startswith("FAKE") for line in out.splitlines())


def test_a_path_with_a_newline_or_escape_never_forges_an_output_line(cli, tmp_path):
    path = tmp_path / "x\nFAKE.csv"
    path.write_text("+12125550101\n", encoding="utf-8")
    code, out, _ = cli("dnc", "import", str(path))
    assert code == 0 and out.startswith(f"imported {str(path)!r}: 1 numbers read")
    assert not any(line.startswith("FAKE") for line in out.splitlines())
    code, _out, err = cli("dnc", "import", str(tmp_path / "nofile\x1b[31m"))
    assert code == 1 and "\x1b" not in err and "nofile\\x1b[31m" in err


def test_dnc_import_missing_file(cli, tmp_path):
    code, _out, err = cli("dnc", "import", str(tmp_path / "nope.csv"))
    assert code == 1 and "cannot read" in err


# --------------------------------------------------------------------------- repeat calls


def place_record(
    store, target: str, at: dt.datetime, agent: int, reason: str | None = "completed"
) -> None:
    """A call to ``target`` that ended at ``at`` for ``reason`` (None: still live); it rang
    the target unless the reason says it ended on the agent's leg."""
    ended = {}
    if reason is not None:
        rang = not reason.startswith("agent_")
        ended = {"state": CallState.ENDED, "reason": EndReason(reason), "ended_at": at,
                 "dialing_target_at": at if rang else None}  # fmt: skip
    store.create_call(CallRecord(
        id=uuid.uuid4().hex, agent_id=agent, agent_phone="+12125550111", target=target,
        route_code="M", trunk="main", caller_id="+12125550100", created_at=at, **ended,
    ))  # fmt: skip


def test_repeat_call_cap_counts_every_agent_in_a_rolling_day(cli):
    cli.configure(policy_repeat_calls={"max_calls": 2, "routes": {"D": {"max_calls": 0}}})
    store = cli.store()
    at = dt.datetime(2026, 7, 1, 16, 0, tzinfo=dt.UTC)
    place_record(store, "+12125550123", at - dt.timedelta(hours=23), agent=1)
    code, _ = check(cli, "--target", NY, "--at", at.isoformat())
    assert code == 0  # one call in 24 h
    # calls that ended before dialing the number (the bot said "… was not dialed") do not count
    for reason in ("agent_no_answer", "agent_not_confirmed"):
        place_record(store, "+12125550123", at - dt.timedelta(hours=3), agent=2, reason=reason)
    code, _ = check(cli, "--target", NY, "--at", at.isoformat())
    assert code == 0
    place_record(store, "+12125550123", at - dt.timedelta(hours=2), agent=2)
    code, result = check(cli, "--target", NY, "--at", at.isoformat())
    assert (code, result["reason"], result["plugin"]) == (
        1,
        "repeat_call_cap",
        "policy_repeat_calls",
    )
    assert result["message"] == (
        "This number was called 2 times in the last 24 hours, by all agents together (the "
        "limit is 2 calls in 24 hours). It may be called again at 17:00 UTC on Wed 01 Jul, "
        "in 1 hour."
    )
    # an hour later the oldest call has left the window
    code, _ = check(cli, "--target", NY, "--at", (at + dt.timedelta(hours=1)).isoformat())
    assert code == 0
    # a call 30.5 s past the minute: the time given is the first whole minute it is allowed
    place_record(store, "+12125550124", at - dt.timedelta(hours=23, seconds=30.5), agent=1)
    place_record(store, "+12125550124", at - dt.timedelta(hours=1), agent=2)
    code, result = check(cli, "--target", "+1 212 555 0124", "--at", at.isoformat())
    assert code == 1 and "again at 17:00 UTC on Wed 01 Jul, in 1 hour" in result["message"]
    again = (at + dt.timedelta(hours=1)).isoformat()  # 17:00:00: allowed, as it said
    assert check(cli, "--target", "+1 212 555 0124", "--at", again)[0] == 0
    # no cap on route D
    code, _ = check(cli, "--target", NY, "--route", "D", "--at", at.isoformat())
    assert code == 0


def test_repeat_call_cap_is_off_by_default(cli):
    store = cli.store()
    at = dt.datetime(2026, 7, 1, 16, 0, tzinfo=dt.UTC)
    for minutes in range(20):
        place_record(store, "+12125550123", at - dt.timedelta(minutes=minutes + 1), agent=1)
    assert check(cli, "--target", NY, "--at", at.isoformat())[0] == 0


def test_repeat_call_cap_config_mistakes(cli):
    cli.configure(policy_repeat_calls={"max_calls": -1})
    code, _out, err = cli("policy", "check", "--target", NY)
    assert code != 0 and "max_calls" in err and "0 = off" in err


# --------------------------------------------------------------------------- the plugins


def test_each_policy_is_listed_from_its_own_distribution(cli):
    _code, out, _ = cli("plugins", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    for name, dist in POLICIES.items():
        assert rows[name]["distribution"] == dist
        assert rows[name]["kind"] == "policy" and rows[name]["enabled"] is True
        assert rows[name]["builtin"] is False and rows[name]["error"] is None
        assert "corecall_check_call" in rows[name]["hooks"]


def test_disabling_a_policy_is_audited_and_takes_it_out(cli):
    assert cli("plugins", "disable", "policy_calling_hours")[0] == 0
    entry = cli.store().audit_log()[0]
    assert (entry.action, entry.subject) == ("plugin.disable", "policy_calling_hours")
    assert entry.actor.startswith("cli:")
    code, result = check(cli, "--target", NY, "--at", "2026-07-01T11:30:00Z")
    assert code == 0
    assert "policy_calling_hours" not in {c["step"] for c in result["checks"]}
    assert cli("plugins", "enable", "policy_calling_hours")[0] == 0
    assert cli.store().audit_log()[0].action == "plugin.enable"
    assert check(cli, "--target", NY, "--at", "2026-07-01T11:30:00Z")[0] == 1
    # disabling the DNC plugin removes its commands; the list stays in the store
    cli("dnc", "add", NY)
    cli("plugins", "disable", "policy_dnc")
    assert cli("dnc", "list")[0] == 2
    assert cli.store().dnc_count() == 1


def test_dnc_import_of_another_shape_says_which_cell_was_read_and_what_works(cli, tmp_path):
    """tester5: a contacts app's 'Name,Phone' export was told "it has no digits", a
    semicolon file "can't contain letters"; nothing is imported from another column."""
    contacts = tmp_path / "cols.csv"
    contacts.write_text("Name,Phone\nAlice,+12125550184\n", encoding="utf-8")
    code, out, _ = cli("dnc", "import", str(contacts))
    assert code == 1 and cli.store().dnc_count() == 0
    assert out.splitlines()[1:] == [
        "  line 1: 'Name,Phone': a header row with the numbers in column 2 ('Phone'), but "
        "each line's first column is the number, columns separated by commas "
        "(number[,reason,...]; see docs/compliance.md): move that column first",
        "  line 2: 'Alice,+12125550184': the first column, 'Alice', is not a phone number, "
        "but column 2 is; each line's first column is the number, columns separated by "
        "commas (number[,reason,...]; see docs/compliance.md): move the numbers' column first",
    ]
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("phone;reason\n+12125550183;semi\n", encoding="utf-8")
    code, out, _ = cli("dnc", "import", str(semicolons), "--json")
    report = json.loads(out)
    assert code == 1 and cli.store().dnc_count() == 0
    assert "separated by semicolons" in report["rejected"][0]["message"]
    assert report["rejected"][1]["message"] == (
        "the columns are separated by semicolons, not commas (see line 1)"
    )
