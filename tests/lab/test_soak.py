"""The fault soak's short version (issue #7): a minute of calls from a few agents while the
AMI connection is cut (once with an Originate in flight), the store is locked by another
process, a FloodWait storm hits and Asterisk restarts. Nothing may be lost or placed twice.
The long runs and their figures: ``bench/soak.py``, docs/benchmarks.md."""

from __future__ import annotations

import pytest
from corecall_testing.soak import soak

pytestmark = pytest.mark.lab


async def test_a_short_fault_soak_loses_nothing_and_places_nothing_twice(lab_environment):
    report = await soak("sqlite", minutes=1.0, agents=6, short=True)
    print("\n".join(report.lines()))
    assert report.requested >= 20 and report.dialed >= 10, report.lines()
    assert report.lost == 0, report.lost_ids
    assert report.duplicated == 0, report.duplicated_what
    assert report.told_wrong == 0, report.told_wrong_what
    assert set(report.faults) == {
        "ami_cut", "ami_cut_in_flight", "store_unavailable", "flood_wait_storm",
        "asterisk_restart",
    }  # fmt: skip
