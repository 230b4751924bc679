"""Numbers pasted from contact apps and word processors, at every door corecall reads a
number through :mod:`corecall.numbers`: the bot's /call, ``number check``, agent phones,
the do-not-call list (``dnc add``, ``dnc import``, /dnc). Their spaces and dashes are often
not ASCII ones (NO-BREAK SPACE, NARROW NO-BREAK SPACE, NON-BREAKING HYPHEN, EN DASH, MINUS
SIGN): the agent sees ordinary spaces and dashes, so corecall reads them so (tester5)."""

from __future__ import annotations

import io
import json

import pytest
from corecall_testing import config_dict

from corecall.agents import AgentAdmin
from corecall.app import App
from corecall.config import parse_config
from corecall.console import run_console_async

#: An Apple contact card's copy: LEFT-TO-RIGHT EMBEDDING ... POP DIRECTIONAL FORMATTING
#: around, NO-BREAK SPACEs between the groups (tester5's instance).
CONTACT_CARD = "\u202a+1\u00a0(212)\u00a0555-0123\u202c"
PASTED = [
    CONTACT_CARD,
    "+1\u202f212\u202f555\u20110123",  # NARROW NO-BREAK SPACE, NON-BREAKING HYPHEN
    "212\u2013555\u20130123",  # EN DASH (a word processor's "smart" dash)
    "+1\u2009212\u2009555\u20090123",  # THIN SPACE
    "(212)\u2007555\u22120123",  # FIGURE SPACE, MINUS SIGN
]


@pytest.mark.parametrize("pasted", PASTED)
def test_number_check_reads_pasted_spaces_and_dashes(cli, pasted):
    code, out, _ = cli("number", "check", pasted, "--json")
    assert (code, json.loads(out)) == (0, {"ok": True, "e164": "+12125550123"})


def test_number_check_still_names_what_is_not_a_space_or_a_dash(cli):
    code, out, _ = cli("number", "check", "212\u2044555\u20440123", "--json")
    verdict = json.loads(out)
    assert code == 1 and verdict["reason"] == "not_a_number"
    assert "U+2044 FRACTION SLASH" in verdict["message"]


def test_agent_phones_read_pasted_spaces_and_dashes(cli):
    assert cli("agents", "add", "--telegram-id", "42", "--phone", CONTACT_CARD)[0] == 0
    assert cli("agents", "set-phone", "42", "+1\u00a0415\u00a0555\u20110134")[0] == 0
    code, out, _ = cli("agents", "list", "--json")
    assert code == 0 and [a["phone"] for a in json.loads(out)] == ["+14155550134"]


def test_dnc_add_and_import_read_pasted_spaces_and_dashes(cli, tmp_path):
    code, out, _ = cli("dnc", "add", "212\u2011555\u20110170")
    assert (code, out) == (0, "added +12125550170 to the do-not-call list\n")
    pasted = tmp_path / "pasted.csv"
    pasted.write_text(
        "number,reason\n"
        f"{CONTACT_CARD},from a contact card\n"
        "+1\u202f646\u202f555\u20110100,asked\n",
        encoding="utf-8",
    )
    code, out, _ = cli("dnc", "import", str(pasted), "--json")
    report = json.loads(out)
    assert code == 0 and report["rejected"] == [] and report["added"] == 2
    code, out, _ = cli("dnc", "list", "--json")
    listed = {e["number"] for e in json.loads(out)}
    assert listed == {"+12125550170", "+12125550123", "+16465550100"}


async def test_the_bot_dials_and_lists_numbers_pasted_from_a_contact_card(tmp_path):
    app = App(parse_config(config_dict(tmp_path, bot={"super_admins": [501]}), path=None))
    admin = AgentAdmin(app)
    admin.authorize(501, actor="test", phone="+12125550111", name="Alice")
    admin.set_route(501, "D", actor="test")
    out = io.StringIO()
    script = f"/call {CONTACT_CARD}\n/dnc +1\u00a0646\u00a0555\u20110101\n"
    try:
        await run_console_async(
            app, 501, stdin=io.StringIO(script), stdout=out, interactive=False, wait=10
        )
    finally:
        calls = app.store.recent_calls(501)
        listed = app.store.dnc_contains("+16465550101")
        app.close()
    assert "bot #1: 📞 Call to +12125550123\n" in out.getvalue()
    assert "not allowed" not in out.getvalue()
    assert [c.target for c in calls] == ["+12125550123"]
    assert listed is True  # Alice is a super admin: /dnc read the pasted number
