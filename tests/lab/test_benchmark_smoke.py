"""The AMI benchmark (bench/ami_bench.py) runs in the suite as one tiny round, so it cannot
rot: it starts its own lab instance, places a few calls through corecall and through bare
panoramisk, replays the recorded event stream and prints its report. The figures of a
round this small mean nothing; that the script runs end to end does (docs/benchmarks.md
holds the real ones)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from corecall_testing.lab import REPO

pytestmark = pytest.mark.lab

TINY = ["--rounds", "1", "--burst", "4", "--rate", "10", "--seconds", "0.5", "--no-postgres"]


def test_the_ami_benchmark_runs_one_tiny_round(lab_environment, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "ami_bench.py"), *TINY],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = proc.stdout
    assert "## AMI driver and the whole /call path" in report
    assert ".venv/bin/python bench/ami_bench.py " + " ".join(TINY) in report
    assert "Traceback" not in proc.stderr
