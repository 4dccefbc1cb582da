"""An HDF5 file's structure read in one pass over its links, refusing on the way whatever
would lead outside the file.

Mapping tensors to layers looks up groups, datasets and the attributes Keras writes (a
layer's saved name, `layer_names`, `weight_names`, a bfloat16 marker) many times over;
through h5py's high-level objects each lookup opens objects again (a small model's weights
cost more to look up than to open). So the file is walked once with h5py's low-level API
into plain objects, `StoredGroup` and `StoredDataset`, that the layout code reads freely.
Tensors are not read here: a dataset records where its bytes lie, its shape and dtype.

The walk is also the safety check. An untrusted file never reaches outside itself: an
external link, a soft link that leads nowhere, a virtual dataset (which maps other files) or
a dataset stored in external files would make libhdf5 open whatever path the file names (a
FIFO, which blocks forever; /dev/zero; another model's weights). Each link's type is checked
before anything behind it is opened, and a group reached twice (a link back to a group that
holds it) is refused, so no walk goes round a loop. Attributes are listed last
(`StoredStructure.read_attributes`), once the caller has checked the global heap their
strings live in (`h5_file_checks`), and each is read when first asked for.
"""

from __future__ import annotations

import weakref
from dataclasses import InitVar, dataclass, field
from types import SimpleNamespace
from typing import Any

import h5py
import numpy as np

from nandoctor.errors import UnreadableFile, first_line

_SHOWN_TARGET = 200  # characters of a link's target quoted in a refusal
# An attribute larger than this is not read (Keras's largest, a model's config, is far smaller).
_MAX_ATTRIBUTE_BYTES = 64 << 20


class _AttributeStore:
    """A node's attributes, each read the first time it is asked for: a legacy file's
    `keras_version` and `backend`, twice each, and the `weight_names` of layers the config
    does not name are never asked for, and reading an attribute costs more than opening
    the object it belongs to. Their names are listed when the file is checked
    (`StoredStructure.read_attributes`), so a file whose attribute table cannot be read is
    refused then, as before; one attribute that cannot be read is refused only when asked
    for, as before (an unreadable attribute nobody asks about does not fail the file)."""

    name: str
    _values: dict[str, Any]
    _unreadable: dict[str, str]
    _unread: dict[str, bytes]  # key -> the name as stored, not read yet
    _object_id: Any  # the object the unread attributes are read from

    @property
    def attributes(self) -> dict[str, Any]:
        """Every readable attribute's value, as h5py's `attrs[name]` gives it."""
        self._read_all()
        return self._values

    @property
    def unreadable(self) -> dict[str, str]:
        """Attribute -> why it could not be read."""
        self._read_all()
        return self._unreadable

    def has_attribute(self, key: str) -> bool:
        """Whether the object has the attribute, readable or not (nothing is read)."""
        return key in self._values or key in self._unreadable or key in self._unread

    def attribute(self, key: str) -> Any:
        """The attribute's value as h5py reads it, or None; one that exists but cannot be read
        is refused."""
        if key in self._unread:
            self._read(key)
        if key in self._unreadable:
            raise UnreadableFile(f"attribute {key!r} of {self.name} cannot be read ({self._unreadable[key]})")
        return self._values.get(key)

    def _note_names(self, object_id: Any) -> None:
        names: list[bytes] = []
        h5py.h5a.iterate(object_id, names.append)
        self._unread = {_key(raw): raw for raw in names}
        self._object_id = object_id if names else None

    def _read(self, key: str) -> None:
        raw = self._unread.pop(key)
        try:
            attribute = h5py.h5a.open(self._object_id, raw)
            if _storage_size(attribute) > _MAX_ATTRIBUTE_BYTES:
                self._unreadable[key] = f"larger than {_MAX_ATTRIBUTE_BYTES >> 20} MiB"
            else:
                self._values[key] = _value(attribute, self._object_id, raw)
        except Exception as error:
            self._unreadable[key] = first_line(error)
        if not self._unread:
            self._object_id = None  # lets the object go

    def _read_all(self) -> None:
        for key in list(self._unread):
            self._read(key)


@dataclass(eq=False)
class StoredDataset(_AttributeStore):
    """A dataset as the walk found it; its values stay in the file."""

    name: str  # its path in the file, as h5py names it ("/layers/dense/vars/0")
    file: h5py.File
    layout: int  # h5py.h5d.CONTIGUOUS, CHUNKED or COMPACT
    offset: int | None  # where its contiguous bytes start in the file; None when they are not one run
    stored_bytes: int
    shape: tuple[int, ...] | None = None  # None for a null dataspace
    dtype: np.dtype | None = None
    problem: str | None = None  # why its shape or dtype could not be read
    # The file's bytes, where it was opened from memory (a .keras archive's weights member):
    # its contiguous values are read from there, not from the disk again.
    image: bytes | None = field(default=None, repr=False)
    _values: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _unreadable: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _unread: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)
    _object_id: Any = field(default=None, init=False, repr=False)

    def open(self) -> h5py.Dataset:
        """The dataset through h5py, to read a chunked or compact one."""
        return self.file[self.name.encode("utf-8", "surrogateescape")]


@dataclass(eq=False)
class StoredGroup(_AttributeStore):
    """A group: its members in the order h5py iterates them, and its attributes."""

    name: str
    members: dict[str, StoredGroup | StoredDataset] = field(default_factory=dict)
    root: InitVar[StoredGroup | None] = None  # the file's root group; None for the root itself
    _values: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _unreadable: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _unread: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)
    _object_id: Any = field(default=None, init=False, repr=False)
    # Held weakly: a tree without cycles is freed, and its HDF5 objects closed, as soon as the
    # view lets go of it, not when the garbage collector next runs (which then has little to do).
    _root: weakref.ref[StoredGroup] | None = field(default=None, init=False, repr=False)

    def __post_init__(self, root: StoredGroup | None) -> None:
        if root is not None:
            self._root = weakref.ref(root)

    @property
    def file_root(self) -> StoredGroup | None:
        """The file's root group (None for the root itself, or once nothing else holds it)."""
        return self._root() if self._root is not None else None

    def get(self, path: str) -> StoredGroup | StoredDataset | None:
        """The member at `path` below this group (from the root where it starts with "/")."""
        node: StoredGroup | StoredDataset | None = (self.file_root or self) if path.startswith("/") else self
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if not isinstance(node, StoredGroup):
                return None
            node = node.members.get(part)
        return node

    def group(self, path: str) -> StoredGroup | None:
        found = self.get(path)
        return found if isinstance(found, StoredGroup) else None


@dataclass
class StoredStructure:
    """What the walk found: the root group, the byte ranges of the contiguous datasets (where
    a global heap cannot lie), and the objects whose attributes are still to be read."""

    root: StoredGroup
    regions: list[tuple[int, int]]
    _with_attributes: list[tuple[StoredGroup | StoredDataset, Any]]

    def read_attributes(self) -> None:
        """List the attributes of every object the walk saw, to be read when asked for; call it
        once the global heap is known sound."""
        for node, object_id in self._with_attributes:
            node._note_names(object_id)
        self._with_attributes = []


def read_structure(h5: h5py.File, label: str, image: bytes | None = None) -> StoredStructure:
    """Walk every link of `h5` once, refusing (in one line naming `label` and the link) any
    that leads out of the file or round a loop; read each dataset's storage, shape and dtype.
    `image`: the file's bytes, where `h5` was opened from them."""
    walk = _Walk(h5, label, image)
    h5.id.links.visit(walk.visit, info=True)
    if walk.refusal is not None:
        raise UnreadableFile(walk.refusal)
    walk.resolve_soft_links()
    walk.order_by_creation()
    return StoredStructure(walk.root, walk.regions, walk.with_attributes)


class _Walk:
    def __init__(self, h5: h5py.File, label: str, image: bytes | None):
        self.h5, self.label, self.image = h5, label, image
        self.root = StoredGroup("/")
        self.groups: dict[bytes, StoredGroup] = {b"": self.root}
        # Each group's object, kept open for the walk: a member is opened from its group, not
        # by its path from the root (a lookup per part of the path).
        self.group_ids: dict[bytes, Any] = {b"": h5.id}
        root_info = h5py.h5o.get_info(h5.id)
        self.group_addresses = {root_info.addr}
        self.regions: list[tuple[int, int]] = []
        self.soft: list[tuple[bytes, StoredGroup, str]] = []
        self.creation_order: dict[bytes, dict[str, int]] = {}
        self.with_attributes: list[tuple[StoredGroup | StoredDataset, Any]] = []
        if root_info.num_attrs:
            self.with_attributes.append((self.root, h5py.h5o.open(h5.id, b"/")))
        self.refusal: str | None = None

    def visit(self, name: bytes, info) -> bool | None:
        """One link: kept, or the walk's refusal (True stops the walk). An error inside is a
        refusal too: raised out of this callback, h5py would turn it into a SystemError whose
        text names a memory address, a different line on every run."""
        try:
            return self._visit(name, info)
        except Exception as error:
            self.refusal = f"{self.label} holds /{_text(name)}, which cannot be opened ({first_line(error)})"
            return True

    def _visit(self, name: bytes, info) -> bool | None:
        parent_path, _, raw_key = name.rpartition(b"/")
        parent = self.groups[parent_path]  # the walk visits a group's link before its members
        key = _key(raw_key)
        if info.corder_valid:  # a group that tracks creation order is iterated in that order
            self.creation_order.setdefault(parent_path, {})[key] = info.corder
        if info.type == h5py.h5l.TYPE_SOFT:
            self.soft.append((name, parent, key))
            parent.members[key] = None  # type: ignore[assignment]  # keeps its place; resolved below
            return None
        if info.type != h5py.h5l.TYPE_HARD:
            self.refusal = _link_out(self.h5, name, info.type, self.label)
            return True  # stops the walk: nothing behind this link is opened
        address = info.u
        if address in self.group_addresses:
            self.refusal = (
                f"{self.label} links /{_text(name)} to a group it already holds: refusing to walk round a loop"
            )
            return True
        item = h5py.h5o.open(self.group_ids[parent_path], raw_key)  # every part of `name` is a hard link
        if isinstance(item, h5py.h5g.GroupID):
            self.group_addresses.add(address)
            self.group_ids[name] = item
            group = self.groups[name] = parent.members[key] = StoredGroup("/" + _key(name), root=self.root)
            self._note_attributes(group, item)
        elif isinstance(item, h5py.h5d.DatasetID):
            dataset = self._dataset(item, name)
            if dataset is None:
                return True
            parent.members[key] = dataset
        return None  # a named datatype is no member a model is read from

    def _dataset(self, item: h5py.h5d.DatasetID, name: bytes) -> StoredDataset | None:
        offset = item.get_offset()
        if offset is not None:  # contiguous bytes in this file; virtual and external storage have no offset
            layout = h5py.h5d.CONTIGUOUS
            stored_bytes = item.get_storage_size()
            self.regions.append((offset, offset + stored_bytes))
        else:
            plist = item.get_create_plist()
            self.refusal = _storage_out(plist, _text(name), self.label)
            if self.refusal is not None:
                return None
            layout = plist.get_layout()
            stored_bytes = item.get_storage_size()  # asked only once the storage is known to be in the file
        dataset = StoredDataset("/" + _key(name), self.h5, layout, offset, stored_bytes, image=self.image)
        try:
            dataset.shape, dataset.dtype = item.shape, item.dtype
        except Exception as error:
            dataset.problem = first_line(error)
        self._note_attributes(dataset, item)
        return dataset

    def _note_attributes(self, node: StoredGroup | StoredDataset, item) -> None:
        if h5py.h5a.get_num_attrs(item):
            self.with_attributes.append((node, item))

    def resolve_soft_links(self) -> None:
        """With no link out of the file left, a soft link stays inside it: one to a dataset is
        that dataset under the link's name; one to nothing, or to a group (which may hold it),
        is refused."""
        for name, parent, key in self.soft:
            target = _shown(_text(self.h5.id.links.get_val(name)))
            try:
                item = h5py.h5o.open(self.h5.id, name)
            except (KeyError, RuntimeError, OSError, ValueError):
                raise UnreadableFile(
                    f"{self.label} has a soft link /{_text(name)} to {target}, which leads to "
                    "nothing in the file: refusing to follow it"
                ) from None
            if isinstance(item, h5py.h5g.GroupID):
                raise UnreadableFile(
                    f"{self.label} has a soft link /{_text(name)} to the group {target}: refusing to walk round a loop"
                )
            dataset = self._dataset(item, name) if isinstance(item, h5py.h5d.DatasetID) else None
            if self.refusal is not None:
                raise UnreadableFile(self.refusal)
            if dataset is None:
                del parent.members[key]
            else:
                parent.members[key] = dataset

    def order_by_creation(self) -> None:
        for path, order in self.creation_order.items():
            group = self.groups.get(path)
            if group is not None and len(order) == len(group.members):
                group.members = {key: group.members[key] for key in sorted(order, key=order.__getitem__)}


# h5py's memory type for a variable-length string, by character set (built once: each build
# costs more than the read).
_VARIABLE_STRING = {
    cset: h5py.h5t.py_create(h5py.string_dtype("utf-8" if cset == h5py.h5t.CSET_UTF8 else "ascii"))
    for cset in (h5py.h5t.CSET_ASCII, h5py.h5t.CSET_UTF8)
}


def _value(attribute, object_id, raw: bytes) -> Any:
    """The attribute's value as h5py's `attrs[name]` gives it. Strings, the attributes Keras
    writes (a layer's saved name in every `vars` group of Keras 3.15, a legacy file's
    `layer_names` and `weight_names`, arrays of strings), and plain numbers (an empty
    `weight_names`, which numpy writes as floats) are read directly, in a third of the time;
    everything else through h5py."""
    kind = attribute.get_type()
    space = attribute.get_space()
    extent = space.get_simple_extent_type()
    if extent == h5py.h5s.NULL:
        return _through_h5py(object_id, raw)
    kind_class = kind.get_class()
    if kind_class == h5py.h5t.STRING:
        if kind.is_variable_str():
            value = np.empty(space.shape, object)
            attribute.read(value, mtype=_VARIABLE_STRING[kind.get_cset()])
            if value.ndim == 0:
                return _decoded(value[()])
            # As h5py gives an array of variable-length strings: str, undecodable bytes kept.
            return np.array([_decoded(item) for item in value.flat], dtype=object).reshape(value.shape)
        fixed = np.empty(space.shape, f"S{kind.get_size()}")
        attribute.read(fixed)
        return fixed[()] if fixed.ndim == 0 else fixed
    if kind_class in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        number = np.empty(space.shape, attribute.dtype)
        attribute.read(number)
        return number[()] if number.ndim == 0 else number
    return _through_h5py(object_id, raw)


def _through_h5py(object_id, raw: bytes) -> Any:
    return h5py.AttributeManager(SimpleNamespace(id=object_id))[raw]


def _decoded(text) -> Any:
    return text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else text


def _storage_size(attribute) -> int:
    try:
        return attribute.get_storage_size()
    except RuntimeError:  # libhdf5 reports an empty attribute's size of 0 as a failure
        return 0


def _link_out(h5: h5py.File, name: bytes, link_type: int, label: str) -> str:
    if link_type == h5py.h5l.TYPE_EXTERNAL:
        file, path = h5.id.links.get_val(name)
        return (
            f"{label} has an external link /{_text(name)} to {_shown(_text(file))}:{_shown(_text(path))}: "
            "refusing to follow it out of the file"
        )
    return f"{label} has a user-defined link /{_text(name)} (type {link_type}): refusing to follow it"


def _storage_out(plist, name: str, label: str) -> str | None:
    """Why a dataset's values lie outside the file, read from its creation properties (its
    extent is not asked for: for a virtual dataset that opens the files it maps)."""
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        source = _text(plist.get_virtual_filename(0)) if plist.get_virtual_count() else "nowhere"
        return (
            f"{label} has a virtual dataset /{name} mapping data from {_shown(source)}: "
            "refusing to follow it out of the file"
        )
    if plist.get_external_count() > 0:
        return (
            f"{label} has a dataset /{name} stored in the external file {_shown(_text(plist.get_external(0)[0]))}: "
            "refusing to follow it out of the file"
        )
    return None


def _key(raw: bytes) -> str:
    """A name as the layout code sees it (bytes that are not UTF-8 kept, as h5py keeps them)."""
    return raw.decode("utf-8", "surrogateescape")


def _text(raw) -> str:
    """A name as a refusal quotes it."""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_TARGET else text[:_SHOWN_TARGET] + "..."
