"""The protobuf wire format, read by hand: enough to walk the few TensorFlow messages the
scan needs (`keras_metadata.pb`, a checkpoint's `BundleEntryProto`) without protobuf's
generated code or TensorFlow. Malformed bytes raise `UnreadableFile`, never loop."""

from __future__ import annotations

from collections.abc import Iterator

from nandoctor.errors import UnreadableFile

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


def read_varint(data: bytes | memoryview, position: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at `position`."""
    value = shift = 0
    while True:
        if position >= len(data):
            raise UnreadableFile("truncated protobuf varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise UnreadableFile("malformed protobuf varint (more than 10 bytes)")


def fields(data: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message: an int for varints and
    fixed-width values, the bytes of a length-delimited field."""
    position = 0
    value: int | bytes
    while position < len(data):
        key, position = read_varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, position = read_varint(data, position)
        elif wire == FIXED64:
            value, position = int.from_bytes(data[position : position + 8], "little"), position + 8
        elif wire == FIXED32:
            value, position = int.from_bytes(data[position : position + 4], "little"), position + 4
        elif wire == LENGTH_DELIMITED:
            length, position = read_varint(data, position)
            if position + length > len(data):
                raise UnreadableFile("protobuf field runs past the end of its message")
            value, position = bytes(data[position : position + length]), position + length
        else:
            raise UnreadableFile(f"unsupported protobuf wire type {wire}")
        if position > len(data):
            raise UnreadableFile("truncated protobuf field")
        yield number, wire, value
