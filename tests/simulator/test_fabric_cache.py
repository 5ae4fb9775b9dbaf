"""Fabric factors kept on disk between commands (simulator.analytic.fabric.FactorCache): the same answers,
files that are not ours ignored, a new code version never reading an old one's, and "off" keeping none."""

from __future__ import annotations

import json

import pytest

from simulator.analytic import fabric
from simulator.analytic.fabric import FactorCache, _factors, run_fabric
from simulator.runspec import v3_pretraining

RUN = v3_pretraining(gpus=256, pp=4, topology="fat-tree-2", oversubscription=2.0)
KEY = (RUN.topology, RUN.radix, RUN.oversubscription, RUN.node, RUN.gpus, RUN.ep, RUN.pp, RUN.ecmp)


def test_a_kept_factor_is_the_computed_one_and_is_read_back(tmp_path, monkeypatch):
    cache = FactorCache(tmp_path)
    computed = _factors(run_fabric(RUN), RUN.ep, RUN.pp, RUN.ecmp)
    assert cache.get(KEY, RUN) == computed
    (path,) = tmp_path.iterdir()
    assert json.loads(path.read_text()) == [computed.dispatch, computed.combine, computed.pp, computed.dp]
    monkeypatch.setattr(fabric, "_factors", lambda *a: pytest.fail("recomputed"))
    assert cache.get(KEY, RUN) == computed  # read, not routed again


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '["a", 1.0, 1.0, 1.0]', "[NaN, 1.0, 1.0, 1.0]", "{}"])
def test_a_file_that_is_not_ours_is_computed_again_and_replaced(tmp_path, text):
    cache = FactorCache(tmp_path)
    good = cache.get(KEY, RUN)
    (path,) = tmp_path.iterdir()
    path.write_text(text)
    assert cache.get(KEY, RUN) == good
    assert json.loads(path.read_text())[0] == good.dispatch


def test_a_change_to_the_routing_code_retires_the_kept_factors(tmp_path, monkeypatch):
    cache = FactorCache(tmp_path)
    cache.get(KEY, RUN)
    monkeypatch.setattr(fabric, "_code_version", lambda: "another version")
    cache.get(KEY, RUN)
    assert len(list(tmp_path.iterdir())) == 2


def test_off_keeps_nothing_and_a_read_only_folder_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("V3SIM_CACHE_DIR", "off")
    assert FactorCache.here().folder is None
    assert FactorCache(None).get(KEY, RUN) == _factors(run_fabric(RUN), RUN.ep, RUN.pp, RUN.ecmp)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert FactorCache(locked / "inner").get(KEY, RUN).dispatch >= 0  # answered, nothing written
    finally:
        locked.chmod(0o700)
