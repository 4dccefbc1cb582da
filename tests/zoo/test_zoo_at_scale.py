"""The whole zoo scanned in worker processes, and again from the cache, gives the serial report."""

from __future__ import annotations

from nandoctor.engine import scan


def test_the_zoo_scanned_in_parallel_and_from_the_cache_is_the_serial_report(zoo_dir, tmp_path):
    serial = scan([zoo_dir]).to_dict()
    assert scan([zoo_dir], jobs=2).to_dict() == serial
    assert scan([zoo_dir], jobs=2, cache_dir=tmp_path).to_dict() == serial  # filling the cache
    assert scan([zoo_dir], cache_dir=tmp_path).to_dict() == serial  # every file from it
    assert len(serial["files"]) > 100
