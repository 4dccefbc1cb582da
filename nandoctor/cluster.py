"""Scanning on a Dask cluster: the files are found here, scanned in batches by the cluster's
workers, and merged into one report, exactly the one a serial scan of the same files gives.

    from dask.distributed import Client
    import nandoctor.cluster

    client = Client("tcp://scheduler:8786")   # or LocalCluster(), dask-jobqueue, dask-kubernetes
    report = nandoctor.cluster.scan_on_cluster(["/models"], client=client)

Every worker must see the files at the same paths as this process (a shared filesystem, or
the same object-store mount). Workers run the static path only (no TensorFlow, no Keras, nothing
in a file executed) and send each file's result back as JSON text, which is checked field by
field here. Dask itself moves tasks and results with pickle between the client and the workers
it runs: the cluster is trusted, the files are not. Needs the `cluster` extra
(`pip install 'nandoctor[cluster]'`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from nandoctor.report import Report

# Files per task: enough that Dask's per-task cost (about a millisecond) is small beside the
# scans (a few milliseconds a small file), few enough that the work spreads over every worker.
FILES_PER_TASK = 32


def scan_on_cluster(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    client=None,
    select: Any = None,
    ignore: Any = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    per_file_ignores: Mapping[str, Any] | None = None,
    files_per_task: int = FILES_PER_TASK,
) -> Report:
    """`nandoctor.scan` of `paths` (files or folders), the files scanned by the workers of
    `client` (a `dask.distributed.Client`; by default the current one)."""
    from nandoctor.catalogue import Selection
    from nandoctor.engine import scan_target_unfiltered, with_ignores
    from nandoctor.loaders import discover
    from nandoctor.result_json import received_result, target_to_dict

    if client is None:
        from distributed import get_client

        client = get_client()
    if files_per_task < 1:
        raise ValueError(f"files_per_task must be at least 1. Received: {files_per_task}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    selection = Selection.resolve(select, ignore, per_file_ignores)  # a bad selector fails before any task
    targets = list(discover([os.fspath(p) for p in paths]))
    results: list = [None] * len(targets)
    readable = []
    for index, target in enumerate(targets):
        if target.error is not None:  # said here, as the serial scan says it: nothing to send
            results[index] = scan_target_unfiltered(target, [])
        else:
            readable.append(index)
    batches = [readable[start : start + files_per_task] for start in range(0, len(readable), files_per_task)]
    futures = client.map(
        scan_batch,
        [[target_to_dict(targets[i]) for i in batch] for batch in batches],
        select=select,
        ignore=ignore,
        options=options,
        pure=False,
    )
    for batch, answers in zip(batches, client.gather(futures)):
        for index, answer in zip(batch, answers, strict=True):
            results[index] = received_result(answer, targets[index].path)
    return Report([with_ignores(result, selection) for result in results])


def scan_batch(
    targets: list[dict],
    *,
    select: Any = None,
    ignore: Any = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """On a worker: each target's unfiltered result, as JSON text."""
    from nandoctor.catalogue import Selection
    from nandoctor.diagnosis import RunsOn
    from nandoctor.engine import scan_target_unfiltered
    from nandoctor.result_json import sent_form, target_from_dict

    rules = Selection.resolve(select, ignore).instances(RunsOn.FILE, options)
    return [sent_form(scan_target_unfiltered(target_from_dict(target), rules)) for target in targets]
