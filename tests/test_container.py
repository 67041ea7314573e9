"""The container layer alone: HEAD fields, chunk framing, the writer's and reader's rules."""

import io
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vqformat import VQIError
from vqformat.format.container import (
    IDAT,
    SIGNATURE,
    Header,
    Reader,
    Writer,
    chunk_bytes,
    is_critical,
)


@given(
    st.integers(1, 2**31 - 1),
    st.integers(1, 2**31 - 1),
    st.integers(1, 4),
    st.integers(1, 65536),
    st.integers(0, 3),
    st.data(),
)
def test_head_fields_round_trip(width, height, channels, colors, compression, data):
    rows = data.draw(st.integers(1, height))
    header = Header(width, height, channels, colors, compression, rows)
    assert Header.from_bytes(header.to_bytes()) == header
    first, rows = header.strip_span(header.strip_count - 1)
    assert first + rows == height and 1 <= rows <= header.strip_rows


def test_chunk_framing_is_length_type_data_crc():
    framed = chunk_bytes(b"tEXt", b"abc")
    assert framed == struct.pack(">I4s", 3, b"tEXt") + b"abc" + struct.pack(
        ">I", zlib.crc32(b"tEXtabc")
    )


@pytest.mark.parametrize(
    ("chunk_type", "critical"),
    [(b"IDAT", True), (b"IDAt", True), (b"iDAT", False), (b"iEND", False), (b"tEXt", False)],
)
def test_criticality_is_the_first_letter_case(chunk_type, critical):
    assert is_critical(chunk_type) is critical


def _file(strips: int) -> tuple[bytes, Header]:
    header = Header(4, strips, 1, 2, 0, 1)
    out = io.BytesIO()
    writer = Writer(out, header, b"\0\xff")
    for _ in range(strips):
        writer.write_strip(b"\0")
    writer.close()
    return out.getvalue(), header


def test_the_writer_refuses_too_few_or_too_many_strips():
    header = Header(4, 2, 1, 2, 0, 1)
    writer = Writer(io.BytesIO(), header, b"\0\xff")
    writer.write_strip(b"\0")
    with pytest.raises(VQIError, match="wrote 1 of 2 strips"):
        writer.close()
    writer.write_strip(b"\0")
    with pytest.raises(VQIError, match="already written"):
        writer.write_strip(b"\0")


def test_the_reader_reads_front_to_back_and_stops_at_iend():
    data, header = _file(3)
    reader = Reader(io.BytesIO(data + b"trailing bytes are never read"))
    assert reader.header == header
    assert reader.read_palette() == b"\0\xff"
    assert list(reader.iter_strips(lambda rows: 1)) == [b"\0"] * 3
    assert reader.offset == len(data)


def test_read_to_strips_leaves_the_first_idat_for_iter_strips():
    data, _ = _file(2)
    reader = Reader(io.BytesIO(data))
    reader.read_palette()
    reader.read_to_strips()
    assert reader.offset == data.index(IDAT) + 4  # the prefix is read, the data is not
    assert list(reader.iter_strips(lambda rows: 1)) == [b"\0", b"\0"]


def test_the_signature_is_checked_first():
    data, _ = _file(1)
    with pytest.raises(VQIError, match="bad signature"):
        Reader(io.BytesIO(b"\x89PNG" + data[4:]))
    assert data.startswith(SIGNATURE)
