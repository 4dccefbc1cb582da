"""The cluster recipe of docs/cli.md on a local Dask cluster (loopback only, no network): the
merged report is the serial scan's, and the workers never import TensorFlow or Keras."""

from __future__ import annotations

import shutil
import sys

import pytest
from distributed import Client, LocalCluster

from nandoctor.cluster import scan_on_cluster
from nandoctor.engine import scan
from tests.conftest import FIXTURES
from tests.test_bad_input import GOOD, corrupt_hdf5, truncated_zip


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as connected,
    ):
        yield connected


def test_a_cluster_scan_of_the_fixtures_is_the_serial_report(client):
    assert scan_on_cluster([FIXTURES], client=client, files_per_task=5).to_dict() == scan([FIXTURES]).to_dict()


def test_the_work_is_spread_over_the_workers_that_import_no_framework(client):
    scan_on_cluster([FIXTURES], client=client, files_per_task=2)
    seen = client.run(
        lambda: sorted(
            {m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "tf_keras"}
            | ({"nandoctor.cluster"} & set(sys.modules))
        )
    )
    assert list(seen.values()) == [["nandoctor.cluster"], ["nandoctor.cluster"]]


def test_bad_input_and_ignores_on_a_cluster_give_the_serial_report(client, tmp_path):
    shutil.copy(GOOD, tmp_path / "good.keras")
    paths = [truncated_zip(tmp_path), corrupt_hdf5(tmp_path), tmp_path / "missing.keras", tmp_path / "good.keras"]
    chosen = {"select": ["ND1", "ND3", "ND9"], "ignore": ["ND101:*emb*"], "per_file_ignores": {"good.keras": ["ND9"]}}
    merged = scan_on_cluster(paths, client=client, **chosen)
    assert merged.to_dict() == scan(paths, **chosen).to_dict()
    assert [result.status.value for result in merged.files] == ["error", "error", "error", "scanned"]
    assert merged.exit_code() == 2


def test_a_bad_selector_fails_before_any_task(client):
    with pytest.raises(ValueError, match="Unknown rule selector"):
        scan_on_cluster([FIXTURES], client=client, select=["ND999x"])
