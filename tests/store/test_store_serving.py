"""One process serves a store's calls at a time, on both backends (corecall.serving)."""

from __future__ import annotations

import pytest
from corecall_testing import config_dict

from corecall.app import App
from corecall.config import parse_config
from corecall.serving import StoreServedElsewhere


def _app(target, data_dir) -> App:
    raw = config_dict(data_dir)
    raw["store"] = (
        {"backend": "sqlite", "sqlite_path": target.location}
        if target.backend == "sqlite"
        else {"backend": "postgres", "postgres_dsn": target.location}
    )
    return App(parse_config(raw, path=None))


def test_a_second_serving_process_on_the_same_store_is_refused(target, tmp_path):
    first, second = _app(target, tmp_path), _app(target, tmp_path)
    try:
        first.claim_serving("run")
        with pytest.raises(StoreServedElsewhere, match=r"corecall run \(pid \d+, since "):
            second.claim_serving("console")
        first.close()  # the lock goes with the process (here: with the app)
        second.claim_serving("console")
    finally:
        first.close()
        second.close()
