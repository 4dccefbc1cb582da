"""Working copies of model files and embedding tables, edited without Keras or TensorFlow.

`open_editor` copies what a fix may change into a temporary folder: a model's config (JSON)
and its HDF5 weights, edited with h5py; or, for a bare table (`.npy`, `.npz`, word2vec,
`.safetensors`), the rows to rewrite. `save(destination)` writes the whole file, in the
input's format, to a new path: the input is never touched (the caller renames the result
into place). Nothing stored in a file is executed: no pickle, no Lambda, no `load_model`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from typing import Any

import h5py
import numpy as np

from nandoctor.fix.prescription import CannotFix
from nandoctor.loaders.h5_file_checks import check_hdf5_file
from nandoctor.loaders.keras_config import parse_model
from nandoctor.loaders.word2vec import Word2VecTextSource
from nandoctor.view import Weight
from nandoctor.view.array_sources import FileRegionSource

CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"
_KERAS3_LAYOUTS = ("keras", "keras-dir")
_TABLE_FORMATS = ("npy", "npz", "word2vec", "safetensors")


class Editor:
    """What fixes change: `config` (None where the file has none) and rows of weights."""

    config: dict[str, Any] | None = None

    def set_rows(self, weight: Weight, rows: np.ndarray, values: np.ndarray) -> None:
        raise NotImplementedError

    def save(self, destination: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Editor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_editor(path: str, format: str) -> Editor:
    if format in _TABLE_FORMATS:
        return TableEditor(path, format)
    if format in ("keras", "keras-dir", "h5", "weights-h5"):
        return ModelFileEditor(path, format)
    raise CannotFix(f"nandoctor fix does not rewrite {format} files yet")


def storage_values(values: np.ndarray, weight: Weight, dtype: np.dtype) -> np.ndarray:
    """Float values as the file stores them: bfloat16 as its 2-byte pattern (rounded to
    nearest even), any other type by a cast."""
    if weight.source.bfloat16:
        bits = np.asarray(values, np.float32).view(np.uint32)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
        return rounded.view(dtype) if dtype.kind == "V" else rounded.astype(dtype)
    return np.asarray(values).astype(dtype)


class ModelFileEditor(Editor):
    """A Keras model file: `.keras` (zip), an unzipped `.keras` folder, a legacy `.h5`, or a
    `.weights.h5`. In the Keras 3 layouts a layer's weights live in a group named for its
    class and rank (`layers/masked_embedding`), so a fix that changes a class moves the groups
    to where Keras will look for them."""

    def __init__(self, path: str, format: str):
        self.path, self.format = path, format
        self.workdir = tempfile.mkdtemp(prefix="nandoctor-fix-")
        self.weights_path = os.path.join(self.workdir, "weights.h5")
        self.config = None
        self._config_is_bytes = False
        has_weights = True
        if format == "keras":
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                self.config = json.loads(archive.read(CONFIG_MEMBER))
                has_weights = WEIGHTS_MEMBER in names
                if has_weights:
                    with archive.open(WEIGHTS_MEMBER) as member, open(self.weights_path, "wb") as copy:
                        shutil.copyfileobj(member, copy, 1 << 20)
        elif format == "keras-dir":
            with open(os.path.join(path, CONFIG_MEMBER), encoding="utf-8") as file:
                self.config = json.load(file)
            has_weights = os.path.exists(os.path.join(path, WEIGHTS_MEMBER))
            if has_weights:
                shutil.copyfile(os.path.join(path, WEIGHTS_MEMBER), self.weights_path)
        else:
            shutil.copyfile(path, self.weights_path)
        self.h5 = h5py.File(self.weights_path, "r+") if has_weights else None
        if self.h5 is not None:
            # The copy is checked as the scan checks a file, before anything of it is read: no
            # link or storage that leaves it is followed, least of all with write access.
            try:
                check_hdf5_file(self.h5, self.weights_path, os.path.basename(path))
            except Exception:
                self.h5.close()
                raise
        if format == "h5" and self.h5 is not None and "model_config" in self.h5.attrs:
            raw = self.h5.attrs["model_config"]
            self._config_is_bytes = isinstance(raw, bytes)
            self.config = json.loads(raw)
        self._saved_paths = self._h5_paths()

    def _h5_paths(self) -> dict[str, str]:
        if self.format not in _KERAS3_LAYOUTS or self.config is None:
            return {}
        return dict(parse_model(self.config).h5_paths)

    def set_rows(self, weight: Weight, rows: np.ndarray, values: np.ndarray) -> None:
        if self.h5 is None or weight.location is None or weight.location not in self.h5:
            raise CannotFix(f"weight {weight.name!r} of {weight.layer!r} is not in the file's weights")
        dataset = self.h5[weight.location]
        order = np.argsort(rows)
        shaped = storage_values(values, weight, dataset.dtype).reshape((len(rows), *dataset.shape[1:]))
        dataset[np.asarray(rows)[order].tolist()] = shaped[order]

    def drop_weights(self, layer_name: str) -> list[str]:
        """Delete the variables stored for a layer (a copy a fix makes redundant), keeping
        its groups, where Keras looks for a layer with no variables; the names dropped."""
        group = self.h5.get(self._saved_paths.get(layer_name, "")) if self.h5 is not None else None
        if group is None:
            return []
        datasets: list[str] = []
        group.visititems(lambda name, item: datasets.append(name) if isinstance(item, h5py.Dataset) else None)
        for name in datasets:
            del group[name]
        return datasets

    def save(self, destination: str) -> None:
        if self.h5 is not None:
            self._move_groups(self.h5)
            if self.format == "h5" and self.config is not None:
                text = json.dumps(self.config)
                self.h5.attrs["model_config"] = text.encode() if self._config_is_bytes else text
            self.h5.close()
            self.h5 = None
        if self.format == "keras":
            self._write_archive(destination)
        elif self.format == "keras-dir":
            shutil.copytree(self.path, destination)
            with open(os.path.join(destination, CONFIG_MEMBER), "w", encoding="utf-8") as file:
                json.dump(self.config, file)
            if os.path.exists(self.weights_path):
                shutil.copyfile(self.weights_path, os.path.join(destination, WEIGHTS_MEMBER))
        else:
            shutil.copyfile(self.weights_path, destination)

    def _move_groups(self, h5: h5py.File) -> None:
        """Move each layer's group to the path Keras derives from the edited config. Moves
        go through temporary names, so two layers may trade paths."""
        moves = [
            (old, new)
            for name, old in self._saved_paths.items()
            if (new := self._h5_paths().get(name)) not in (None, old) and old in h5
        ]
        for index, (old, _) in enumerate(moves):
            h5.move(old, f"{old}.nandoctor-moving-{index}")
        for index, (old, new) in enumerate(moves):
            h5.move(f"{old}.nandoctor-moving-{index}", new)

    def _write_archive(self, destination: str) -> None:
        with zipfile.ZipFile(self.path) as source, zipfile.ZipFile(destination, "w") as target:
            for info in source.infolist():
                if info.filename == CONFIG_MEMBER:
                    target.writestr(info, json.dumps(self.config))
                elif info.filename == WEIGHTS_MEMBER:
                    with open(self.weights_path, "rb") as weights, target.open(info, "w", force_zip64=True) as out:
                        shutil.copyfileobj(weights, out, 1 << 20)
                else:
                    with source.open(info) as member, target.open(info, "w", force_zip64=True) as out:
                        shutil.copyfileobj(member, out, 1 << 20)

    def close(self) -> None:
        if self.h5 is not None:
            self.h5.close()
            self.h5 = None
        shutil.rmtree(self.workdir, ignore_errors=True)


class TableEditor(Editor):
    """An embedding table or word-vector file: rows are rewritten in the file's own format.
    Fixed-width formats (`.npy`, `.safetensors`, binary word2vec) are copied and the rows
    written in place by offset; text word2vec and `.npz` are rewritten front to back."""

    def __init__(self, path: str, format: str):
        self.path, self.format = path, format
        self.rows: dict[str, tuple[Weight, np.ndarray, np.ndarray]] = {}

    def set_rows(self, weight: Weight, rows: np.ndarray, values: np.ndarray) -> None:
        self.rows[weight.layer] = (weight, np.asarray(rows, np.int64), np.asarray(values))

    def save(self, destination: str) -> None:
        if self.format == "npz":
            self._rewrite_npz(destination)
        elif self.format == "word2vec" and not hasattr(self._only_source(), "row_offsets"):
            self._rewrite_text(destination)
        elif self.format == "npy":
            shutil.copyfile(self.path, destination)
            for _, rows, values in self.rows.values():
                table = np.load(destination, mmap_mode="r+", allow_pickle=False)
                table[rows] = values.reshape((len(rows), *table.shape[1:])).astype(table.dtype)
                table.flush()
                del table
        else:
            shutil.copyfile(self.path, destination)
            with open(destination, "r+b") as file:
                for weight, rows, values in self.rows.values():
                    stored = storage_values(values, weight, weight.source.dtype)
                    for offset, row in zip(row_offsets(weight, rows), stored):
                        file.seek(int(offset))
                        file.write(np.ascontiguousarray(row).tobytes())

    def _only_source(self):
        return next(iter(self.rows.values()))[0].source

    def _rewrite_text(self, destination: str) -> None:
        weight, rows, values = next(iter(self.rows.values()))
        assert isinstance(weight.source, Word2VecTextSource)  # save() sends only text word2vec here
        replaced = {int(row): vector for row, vector in zip(rows, values)}
        with open(self.path, "rb") as source, open(destination, "wb") as target:
            if weight.source.skip_header:
                target.write(source.readline())
            for row, line in enumerate(source):
                vector = replaced.get(row)
                if vector is not None:
                    word = line.rstrip(b"\r\n").rsplit(None, len(vector))[0]
                    line = word + b" " + " ".join(format(float(v), ".6g") for v in vector).encode() + b"\n"
                target.write(line)

    def _rewrite_npz(self, destination: str) -> None:
        with zipfile.ZipFile(self.path) as source, zipfile.ZipFile(destination, "w") as target:
            for info in source.infolist():
                change = self.rows.get(info.filename.removesuffix(".npy"))
                if change is None:
                    with source.open(info) as member, target.open(info, "w", force_zip64=True) as out:
                        shutil.copyfileobj(member, out, 1 << 20)
                    continue
                with source.open(info) as member:
                    table = np.lib.format.read_array(member, allow_pickle=False)
                _, rows, values = change
                table[rows] = values.reshape((len(rows), *table.shape[1:])).astype(table.dtype)
                with target.open(info, "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, table, allow_pickle=False)


def row_offsets(weight: Weight, rows: np.ndarray) -> np.ndarray:
    """Byte offsets of the given rows in the file, for sources stored at fixed places."""
    source = weight.source
    if isinstance(source, FileRegionSource):
        return source.offset + np.asarray(rows, np.int64) * source.row_len * source.itemsize
    if hasattr(source, "row_offsets"):
        return source.row_offsets(rows)
    raise CannotFix(f"the rows of {weight.layer!r} are not stored where nandoctor can rewrite them")
