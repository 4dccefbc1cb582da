"""safetensors files written by the safetensors package: tensors mapped by offset, embedding
tables told by their names, bf16 and fp16 widened, corrupt headers refused in one line."""

import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

import nandoctor
from tests.conftest import run_cli
from tests.test_fuzz import check_mutated_part


def embedding_file(tmp_path, dtype="float32"):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(300, 16)).astype(np.float32)
    table[[3, 7, 11]] = 0
    dense = rng.normal(size=(16, 16)).astype(np.float32)
    dense[0, 0] = np.nan
    tensors = {"transformer.wte.weight": table, "transformer.h.0.mlp.c_fc.weight": dense}
    if dtype == "bfloat16":
        import ml_dtypes

        tensors = {name: value.astype(ml_dtypes.bfloat16) for name, value in tensors.items()}
    elif dtype == "float16":
        tensors = {name: value.astype(np.float16) for name, value in tensors.items()}
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    return path


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_zero_rows_and_nan_are_found_in_every_dtype(tmp_path, dtype):
    findings = {f.code: f for f in nandoctor.scan(embedding_file(tmp_path, dtype)).findings}
    assert findings["ND101"].layer == "transformer.wte.weight" and findings["ND101"].details["count"] == 3
    assert findings["ND102"].layer == "transformer.h.0.mlp.c_fc.weight"


def test_a_header_length_past_the_end_is_one_line(tmp_path):
    path = embedding_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[:8] = struct.pack("<Q", len(data) * 2)
    path.write_bytes(bytes(data))
    result = run_cli("scan", path, expected_exit=2)
    assert "runs past the end of the file" in result.stderr + result.stdout


def test_mutated_safetensors_are_scanned_or_refused_in_one_line(tmp_path):
    (tmp_path / "source").mkdir()
    embedding_file(tmp_path / "source")
    check_mutated_part(tmp_path / "source", "model.safetensors", "model.safetensors", tmp_path, examples=60)
