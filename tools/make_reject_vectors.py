"""Write spec/vectors/reject/: files a conforming decoder MUST reject (spec §8).

Each ``NAME.vqi`` has a ``NAME.json``: ``{"rule": "§8 item N", "reason": ..., "structural":
bool}``; a structural fault is found without decompressing a strip (``verify`` finds
it too). Files are built from method names and the public writer, never from method
codes, so that a renumbering of the methods regenerates the right files. Run after a
deliberate format change only; tests/test_reject_vectors.py checks every file.
"""

from __future__ import annotations

import json
import lzma
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

import vqformat
from vqformat.format import bitpack
from vqformat.format.container import HEAD, IDAT, IEND, PLTE, SIGNATURE, chunk_bytes
from vqformat.format.methods import COMPRESSION_METHODS, codec_by_name, runs_payload

REJECT = Path(__file__).resolve().parent.parent / "spec" / "vectors" / "reject"
HEAD_LAYOUT = struct.Struct(">BBBBIIII")  # version, C, b, method, W, H, k, strip rows

PALETTE = np.array([[0], [128], [255]], dtype=np.uint8)  # k = 3, b = 2
INDICES = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)  # 3 x 2, one strip
PACKED = bitpack.pack(INDICES, 2)  # the stored strip: 2 bytes


def head(
    width: int = 3,
    height: int = 2,
    channels: int = 1,
    colors: int = 3,
    method: str | int = "stored",
    strip_rows: int | None = None,
    bits: int | None = None,
    version: int = 1,
) -> bytes:
    """HEAD data with any field, in or out of range; ``method`` is a name or a raw code."""
    code = codec_by_name(method).code if isinstance(method, str) else method
    bits = (colors - 1).bit_length() if bits is None else bits
    strip_rows = height if strip_rows is None else strip_rows
    return HEAD_LAYOUT.pack(version, channels, bits, code, width, height, colors, strip_rows)


def assemble(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return SIGNATURE + b"".join(chunk_bytes(kind, data) for kind, data in chunks)


def strip_file(payload: bytes, method: str = "stored", **fields: int) -> bytes:
    """The 3 x 2 image with one strip of ``payload`` under ``method``."""
    palette = PALETTE.tobytes()[: fields.get("colors", 3)]
    chunks = [(HEAD, head(method=method, **fields)), (PLTE, palette), (IDAT, payload)]
    return assemble([*chunks, (IEND, b"")])


def valid(method: str = "stored") -> bytes:
    return vqformat.encode_indexed(PALETTE, INDICES, compression=method)


def chunks_of(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk of a well-formed file."""
    out, at = [], len(SIGNATURE)
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        out.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return out


def bad_crc(chunk: bytes) -> bytes:
    """The chunk with the last bit of its CRC flipped."""
    return chunk[:-1] + bytes([chunk[-1] ^ 1])


def retyped(old: bytes, new: bytes) -> bytes:
    return assemble([(new if kind == old else kind, body) for kind, body in chunks_of(valid())])


def zlib_with(data: bytes, fault: str) -> bytes:
    """A zlib stream of ``data`` with one fault."""
    stream = zlib.compress(data, 9)
    if fault == "fdict":  # FDICT set, FCHECK fixed so the header is still a multiple of 31
        cmf, flg = stream[0], (stream[1] | 0x20) & 0xE0
        flg += 31 - ((cmf << 8) + flg) % 31
        return bytes([cmf, flg]) + b"\0\0\0\0" + stream[2:]
    if fault == "adler":
        return stream[:-1] + bytes([stream[-1] ^ 1])
    return {"trailing": stream + b"\0", "cut": stream[:-3]}[fault]


def lzma_payload(
    fields: bytes, field: int = 8, height: int = 32, table: bytes = bytes([0, 1, 2, 3])
) -> bytes:
    """A lzma-packed-bands strip of the 3 x 2 image whose field stream is ``fields``."""
    stream = _lzma2(fields)
    return bytes([height, field]) + table + stream


def _lzma2(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])


def _band_fields() -> bytes:
    """The 3 x 2 indices in band-scan order (h = 32 covers the strip), one byte each."""
    return INDICES.T.astype(np.uint8).tobytes()


def runs(height: int, flags: list[int], literals: bytes, flag_stream: bytes | None = None) -> bytes:
    """A deflate-byte-runs strip from explicit run flags and literal bytes."""
    packed_flags = bitpack.pack(np.array(flags, dtype=np.uint8), 1)
    stream = zlib.compress(packed_flags) if flag_stream is None else flag_stream
    return runs_payload(height, stream, zlib.compress(literals))


Vector = tuple[str, int, str, bool, Callable[[], bytes]]


def vectors() -> Iterator[Vector]:
    """(name, §8 item, reason, structural, bytes) of every must-reject file."""
    base = valid()
    chunks = chunks_of(base)
    yield (
        "signature",
        1,
        "the signature's third byte is changed",
        True,
        lambda: base[:2] + b"W" + base[3:],
    )
    yield "signature-png", 1, "a PNG signature", True, lambda: b"\x89PNG\r\n\x1a\n" + base[8:]
    yield (
        "first-chunk-plte",
        2,
        "PLTE comes before HEAD",
        True,
        lambda: assemble([chunks[1], chunks[0], *chunks[2:]]),
    )
    yield (
        "chunk-type-digit",
        2,
        "a chunk type with a digit",
        True,
        lambda: assemble([chunks[0], (b"te1t", b""), *chunks[1:]]),
    )
    yield (
        "chunk-length-2-31",
        2,
        "an ancillary chunk declares 2**31 bytes",
        True,
        lambda: base[:40] + struct.pack(">I4s", 1 << 31, b"teXt") + bytes(16),
    )
    for kind, body in chunks:
        name = kind.decode().lower()
        yield (
            f"crc-{name}",
            3,
            f"one bit of the {kind.decode()} chunk's CRC is flipped",
            True,
            (
                lambda kind=kind, body=body: base.replace(
                    chunk_bytes(kind, body), bad_crc(chunk_bytes(kind, body))
                )
            ),
        )
    yield (
        "crc-ancillary",
        3,
        "an ancillary chunk's CRC is wrong",
        True,
        lambda: base[:40] + bad_crc(chunk_bytes(b"teXt", b"a")) + base[40:],
    )
    yield (
        "head-short",
        4,
        "HEAD holds 19 bytes",
        True,
        lambda: assemble([(HEAD, head()[:19]), *chunks[1:]]),
    )
    yield (
        "head-long",
        4,
        "HEAD holds 21 bytes",
        True,
        lambda: assemble([(HEAD, head() + b"\0"), *chunks[1:]]),
    )
    fields = {
        "width-0": {"width": 0},
        "height-0": {"height": 0, "strip_rows": 1},
        "width-2-31": {"width": 1 << 31},
        "channels-0": {"channels": 0},
        "channels-5": {"channels": 5},
        "colors-0": {"colors": 0, "bits": 0},
        "colors-65537": {"colors": 65537},
        "strip-rows-0": {"strip_rows": 0},
        "strip-rows-above-height": {"strip_rows": 3},
        "version-0": {"version": 0},
        "version-2": {"version": 2},
        "bits-too-few": {"bits": 1},
        "bits-too-many": {"bits": 3},
    }
    for name, change in fields.items():
        yield (
            f"head-{name}",
            4,
            f"a HEAD field out of range: {change}",
            True,
            (lambda change=change: assemble([(HEAD, head(**change)), *chunks[1:]])),
        )
    used = {codec.code for codec in COMPRESSION_METHODS.values()}
    for code in (min(set(range(256)) - used), 255):
        label = "unassigned" if code != 255 else "255"
        yield (
            f"head-method-{label}",
            4,
            f"compression method {code}, not defined",
            True,
            (lambda code=code: assemble([(HEAD, head(method=code)), *chunks[1:]])),
        )
    for kind in (b"ABCD", b"IDAt", b"IEnD", b"PLTe", b"HEAd"):
        yield (
            f"critical-{kind.decode()}",
            5,
            f"unknown critical chunk {kind.decode()}",
            True,
            (lambda kind=kind: assemble([*chunks[:2], (kind, b""), *chunks[2:]])),
        )
    yield "idat-typed-IDAt", 5, "the only IDAT is typed IDAt", True, lambda: retyped(IDAT, b"IDAt")
    yield "plte-missing", 5, "no PLTE", True, lambda: assemble([chunks[0], *chunks[2:]])
    yield (
        "plte-repeated",
        5,
        "PLTE twice",
        True,
        lambda: assemble([*chunks[:2], chunks[1], *chunks[2:]]),
    )
    yield (
        "idat-before-plte",
        5,
        "IDAT before PLTE",
        True,
        lambda: assemble([chunks[0], chunks[2], chunks[1], chunks[3]]),
    )
    yield (
        "idat-missing",
        5,
        "no IDAT for the one strip",
        True,
        lambda: assemble([*chunks[:2], chunks[3]]),
    )
    yield (
        "idat-extra",
        5,
        "two IDATs for one strip",
        True,
        lambda: assemble([*chunks[:3], chunks[2], chunks[3]]),
    )
    yield (
        "idat-too-few",
        5,
        "one IDAT where the header declares two strips",
        True,
        lambda: strip_file(bitpack.pack(INDICES[:1], 2), strip_rows=1),
    )
    yield "head-repeated", 5, "HEAD twice", True, lambda: assemble([chunks[0], *chunks])
    yield (
        "plte-short",
        6,
        "PLTE of 2 bytes for k x C = 3",
        True,
        lambda: assemble([chunks[0], (PLTE, b"\0\x80"), *chunks[2:]]),
    )
    yield (
        "plte-long",
        6,
        "PLTE of 4 bytes for k x C = 3",
        True,
        lambda: assemble([chunks[0], (PLTE, b"\0\x80\xff\xff"), *chunks[2:]]),
    )
    yield from stream_vectors()
    yield "iend-missing", 9, "the file ends after the last IDAT", True, lambda: base[:-12]
    yield "cut-in-idat", 9, "the file ends inside the IDAT", True, lambda: base[:64]
    yield "cut-in-head", 9, "the file ends inside HEAD", True, lambda: base[:30]
    yield (
        "iend-not-empty",
        8,
        "IEND holds a byte",
        True,
        lambda: assemble([*chunks[:3], (IEND, b"\0")]),
    )


def stream_vectors() -> Iterator[Vector]:
    """Faults inside a strip: found only by decoding it (apart from an IDAT over its bound)."""
    yield "stored-short", 7, "stored strip of 1 byte for 2", False, lambda: strip_file(PACKED[:1])
    yield (
        "stored-long",
        7,
        "stored strip of 3 bytes for 2",
        True,
        lambda: strip_file(PACKED + b"\0"),
    )
    yield (
        "stored-padding",
        7,
        "non-zero padding bits",
        False,
        lambda: strip_file(PACKED[:1] + bytes([PACKED[1] | 1])),
    )
    yield (
        "stored-index-k",
        7,
        "index 3 with k = 3",
        False,
        lambda: strip_file(bitpack.pack(np.array([[0, 1, 3], [2, 1, 0]]), 2)),
    )
    deflate = lambda payload: strip_file(payload, method="deflate")  # noqa: E731
    for fault in ("trailing", "fdict", "adler", "cut"):
        yield (
            f"deflate-{fault}",
            7,
            f"zlib stream fault: {fault}",
            False,
            (lambda fault=fault: deflate(zlib_with(PACKED, fault))),
        )
    yield (
        "deflate-short",
        7,
        "inflates to 1 byte for 2",
        False,
        lambda: deflate(zlib.compress(PACKED[:1])),
    )
    yield (
        "deflate-long",
        7,
        "inflates to 3 bytes for 2",
        False,
        lambda: deflate(zlib.compress(PACKED + b"\0")),
    )
    yield (
        "deflate-bomb",
        7,
        "within the bound, inflates to 30000 bytes for 2",
        False,
        (lambda: deflate(zlib.compress(bytes(30000), 9))),
    )
    yield (
        "deflate-over-bound",
        7,
        "an IDAT longer than the method's bound",
        True,
        lambda: deflate(zlib.compress(PACKED, 0) + bytes(100)),
    )
    byte_runs = lambda payload: strip_file(payload, method="deflate-byte-runs")  # noqa: E731
    fields = bitpack.pack(INDICES.T.reshape(-1), 2)  # bands of 2 rows, read by column
    yield (
        "byte-runs-first-flag-0",
        7,
        "first run flag 0",
        False,
        lambda: byte_runs(runs(2, [0, 1], fields[1:])),
    )
    yield (
        "byte-runs-band-height-0",
        7,
        "band height 0",
        False,
        lambda: byte_runs(runs(0, [1, 1], fields)),
    )
    yield (
        "byte-runs-literal-count",
        7,
        "two runs start, one literal",
        False,
        lambda: byte_runs(runs(2, [1, 1], fields[:1])),
    )
    yield (
        "byte-runs-flags-overrun",
        7,
        "the flag stream length overruns the strip",
        False,
        (lambda: byte_runs(b"\x02" + struct.pack(">I", 99) + zlib.compress(b"\xc0"))),
    )
    yield (
        "byte-runs-no-flag-length",
        7,
        "the strip ends inside the flags length",
        False,
        (lambda: byte_runs(b"\x02\0\0")),
    )
    yield (
        "byte-runs-flags-trailing",
        7,
        "bytes after the flag stream",
        False,
        lambda: byte_runs(runs(2, [1, 1], fields, zlib.compress(b"\xc0") + b"\0")),
    )
    yield "byte-runs-empty", 7, "an empty strip", False, lambda: byte_runs(b"")
    lz = lambda payload: strip_file(payload, method="lzma-packed-bands")  # noqa: E731
    codes = _band_fields()
    yield "lzma-band-height-0", 7, "band height 0", False, lambda: lz(lzma_payload(codes, height=0))
    yield (
        "lzma-field-width",
        7,
        "field width 4 for 2-bit indices",
        False,
        lambda: lz(lzma_payload(codes, field=4)),
    )
    yield (
        "lzma-table",
        7,
        "a renumbering table that is not a permutation",
        False,
        lambda: lz(lzma_payload(codes, table=bytes([0, 1, 1, 3]))),
    )
    yield (
        "lzma-code-above-bits",
        7,
        "a code of 4 with b = 2",
        False,
        lambda: lz(lzma_payload(codes[:-1] + b"\x04")),
    )
    yield "lzma-short", 7, "expands to 5 bytes for 6", False, lambda: lz(lzma_payload(codes[:-1]))
    yield "lzma-long", 7, "expands to 7 bytes for 6", False, lambda: lz(lzma_payload(codes + b"\0"))
    yield (
        "lzma-trailing",
        7,
        "bytes after the end marker",
        False,
        lambda: lz(lzma_payload(codes) + b"\0"),
    )
    yield "lzma-no-end", 7, "the end marker is missing", False, lambda: lz(lzma_payload(codes)[:-1])
    yield (
        "lzma-corrupt",
        7,
        "an invalid LZMA2 control byte",
        False,
        lambda: lz(lzma_payload(codes)[:6] + b"\x02" + lzma_payload(codes)[7:]),
    )


def main() -> None:
    REJECT.mkdir(parents=True, exist_ok=True)
    for old in REJECT.glob("*"):
        old.unlink()
    for name, rule, reason, structural, build in vectors():
        (REJECT / f"{name}.vqi").write_bytes(build())
        record = {"rule": f"§8 item {rule}", "reason": reason, "structural": structural}
        (REJECT / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
