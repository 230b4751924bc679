"""The committed Asterisk configs are exactly the render of the defaults, and the renderers
refuse values that could inject configuration. No root and no Asterisk needed.
"""

from __future__ import annotations

import re

import pytest
from corecall_asterisk import render as asterisk_conf
from corecall_testing.lab import REPO

ASTERISK_DIR = REPO / "asterisk"


@pytest.mark.parametrize("name", sorted(asterisk_conf.render_defaults()))
def test_committed_file_equals_render_of_defaults(name):
    committed = (ASTERISK_DIR / name).read_text()
    assert committed == asterisk_conf.render_defaults()[name], (
        f"asterisk/{name} is stale: regenerate it with `.venv/bin/corecall-lab render`"
    )


def _settings(text: str, section: str) -> list[tuple[str, str]]:
    """(key, value) pairs of one [section], comments dropped."""
    out, current = [], None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            current = line[1 : line.index("]")]
            continue
        if current == section and "=" in line:
            key, _, value = line.partition("=")
            out.append((key.strip(), value.strip()))
    return out


def test_manager_user_is_least_privilege():
    text = asterisk_conf.render_manager(secret="s3cret-s3cret-s3cret")
    general = dict(_settings(text, "general"))
    assert general["bindaddr"] == "127.0.0.1"
    user = _settings(text, "corecall")
    keys = [k for k, _ in user]
    values = dict(user)
    assert values["read"].split(",") == ["call", "user", "system"]
    assert values["write"].split(",") == ["originate", "call"]
    assert keys.index("deny") < keys.index("permit")
    assert values["deny"] == "0.0.0.0/0.0.0.0"
    assert values["permit"] == "127.0.0.1/255.255.255.255"
    assert "eventfilter" in values
    for forbidden in ("system", "command", "config", "reporting", "all"):
        assert forbidden not in values["write"].split(",")


def test_event_filter_regex_selects_exactly_the_driver_events():
    text = asterisk_conf.render_manager(secret="s3cret-s3cret-s3cret")
    (pattern,) = [v for k, v in _settings(text, "corecall") if k == "eventfilter"]
    regex = re.compile(pattern.replace("[[:space:]]", r"\s"))
    for name in asterisk_conf.AMI_EVENTS:
        assert regex.search(f"Event: {name}\r\nPrivilege: call,all\r\n")
    # DialState passes (early media: 183 without 180); everything else of the call class not.
    assert "DialState" in asterisk_conf.AMI_EVENTS
    for name in ("VarSet", "Newexten", "HangupRequest", "HangupHandlerRun", "Cdr", "DTMFEnd"):
        assert not regex.search(f"Event: {name}\r\nPrivilege: call,all\r\n"), name


def test_pjsip_trunks_are_ip_only_without_registration_or_auth():
    text = asterisk_conf.render_pjsip(
        [{"name": "corecall-main", "provider_host": "198.51.100.7", "provider_port": 5080}]
    )
    config = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    assert "type=registration" not in config and "type=auth" not in config
    assert "password" not in config and "auth" not in config
    assert "match=198.51.100.7" in text
    assert "contact=sip:198.51.100.7:5080" in text
    assert "direct_media=no" in text
    assert "identify_by=ip" in text
    assert "endpoint_identifier_order=ip" in text
    assert "context=corecall-inbound" in text


@pytest.mark.parametrize(
    "trunk",
    [
        {"name": "Main", "provider_host": "198.51.100.7"},
        {"name": "corecall-main\ncontext=evil", "provider_host": "198.51.100.7"},
        {"name": "corecall-main", "provider_host": "198.51.100.7\nmatch=0.0.0.0/0"},
        {"name": "corecall-main", "provider_host": "provider.example.com"},
        {"name": "corecall-main", "provider_host": "198.51.100.7", "provider_port": 0},
    ],
)
def test_pjsip_refuses_unsafe_values(trunk):
    with pytest.raises(ValueError):
        asterisk_conf.render_pjsip([trunk])


def test_pjsip_refuses_two_trunks_on_one_address():
    trunks = [
        {"name": "corecall-main", "provider_host": "198.51.100.7"},
        {"name": "corecall-dev", "provider_host": "198.51.100.7"},
    ]
    with pytest.raises(ValueError, match="IP identification"):
        asterisk_conf.render_pjsip(trunks)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": "short"},
        {"secret": "long-enough-but\nwrite=all"},
        {"username": "corecall]\n[admin"},
        {"secret": "s3cret-s3cret-s3cret", "permit": "0.0.0.0/0.0.0.0\nwrite=all"},
        {"secret": "s3cret-s3cret-s3cret", "bind": "0.0.0.0\nport=1"},
        {"secret": "s3cret-s3cret-s3cret", "events": ["Hangup|.*"]},
    ],
)
def test_manager_refuses_unsafe_values(kwargs):
    with pytest.raises(ValueError):
        asterisk_conf.render_manager(**kwargs)


def test_bridge_context_filters_every_variable_and_dials_only_filtered_values():
    text = asterisk_conf.render_extensions()
    bridge = text[text.index("[corecall-bridge]") : text.index("[corecall-bridge-end]")]
    for var in (
        "CORECALL_CALL_ID",
        "CORECALL_TRUNK",
        "CORECALL_CALLER_ID",
        "CORECALL_DIAL_TIMEOUT",
    ):
        assert "FILTER(" in bridge and f",${{{var}}})}}" in bridge, var
    assert "exten => _+X.,1," in bridge
    dial = [line for line in bridge.splitlines() if "Dial(" in line]
    assert dial == [" same => n,Dial(PJSIP/${CC_TARGET}@${CC_TRUNK},${CC_TIMEOUT})"]
    assert "Set(CALLERID(num)=${CC_CID})" in bridge
    assert "hangup_handler_push" in bridge
    # Only the pattern and the invalid-extension handler exist in the bridge context.
    extens = re.findall(r"^exten => ([^,]+),", bridge, re.M)
    assert extens == ["_+X.", "i"]
    assert "UserEvent(CorecallEnd," in text


def test_extensions_refuse_unsafe_values():
    with pytest.raises(ValueError):
        asterisk_conf.render_extensions("corecall-bridge]\n[other")
    with pytest.raises(ValueError):
        asterisk_conf.render_extensions(dial_timeout_default=0)
    with pytest.raises(ValueError):
        asterisk_conf.render_extensions(dial_timeout_default=90, dial_timeout_max=60)
