"""The Asterisk lab as pytest fixtures, for every test directory (a plugin loaded by
``tests/conftest.py`` as ``corecall_testing.lab_fixtures``).

``lab`` (session scope) builds the Debian-unstable chroot if needed (~25 s, once per
machine), then starts one Asterisk and two sipp carriers on free loopback ports (~1 s) and
stops them all at the end of the session. Helpers live in ``corecall_testing.lab``.

When the machine cannot run the lab (not root, not Debian, apt cannot install mmdebstrap or
sipp, the chroot cannot be built) the tests are skipped with the reason, except when the ``CI``
environment variable is set: then they fail, so a CI run never passes without the lab.
"""

from __future__ import annotations

import os

import pytest

from corecall_testing.lab import labmod, make_lab


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def lab_unavailable(reason: str):
    banner = "*" * 12
    if in_ci():
        pytest.fail(
            f"{banner} Asterisk lab unavailable and CI is set: {reason} {banner}", pytrace=False
        )
    pytest.skip(
        f"{banner} ASTERISK LAB UNAVAILABLE: {reason}. Run the suite as root on Debian to "
        f"test against a real Asterisk (docs/asterisk-lab.md) {banner}"
    )


@pytest.fixture(scope="session")
def lab_environment():
    """The lab chroot is built and sipp/mmdebstrap installed, or the test is skipped (failed
    in CI)."""
    try:
        labmod.check_environment()
        labmod.ensure_tools()
        labmod.ensure_root()
    except labmod.LabUnavailable as exc:
        lab_unavailable(str(exc))
    except labmod.LabError as exc:
        lab_unavailable(f"could not build the lab chroot: {exc}")
    return labmod


@pytest.fixture(scope="session")
def lab(lab_environment):
    """A running lab instance shared by the session: Asterisk (AMI user ``corecall``) and
    carriers ``corecall-main`` (127.0.0.2) and ``corecall-dev`` (127.0.0.3) on free ports."""
    instance = make_lab(f"pytest-{os.getpid()}")
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def fresh_lab(lab):
    """The session lab, with the carriers' INVITE logs cleared for this test."""
    lab.clear_invites()
    return lab
