"""Write the reference files of spec/vectors/ from their palettes and indices.

Run after a deliberate change of the vectors only; tests/test_vectors.py checks that
the decoder reads exactly these pixels and that the encoder writes what they hold
(byte for byte where spec/vqi.md section 10 pins the bytes).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np

import vqformat
from vqformat.format import bitpack
from vqformat.format.bands import band_scan, field_bits
from vqformat.format.container import HEAD, IDAT, IEND, PLTE, SIGNATURE, Header, chunk_bytes
from vqformat.format.methods import (
    DeflateByteRuns,
    LzmaPackedBands,
    codec_by_name,
    lzma2_compress,
    renumber,
)

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
LARGE_FILE = 4096  # longer vectors go to large/, apart from the byte-by-byte fuzz tests


def _cycle(height: int, width: int, colors: int) -> np.ndarray:
    """Indices that use every palette entry, in a pattern with some repetition."""
    return ((np.arange(height * width) * 7) % colors).reshape(height, width)


def _blocks(height: int, width: int, colors: int) -> np.ndarray:
    """Indices in rectangles, as in an image: runs along columns make band heights > 1 pay."""
    y, x = np.mgrid[:height, :width]
    return ((x // 3) * 5 + (y // 4) * 3 + (x * y) // 17) % colors


def _palette(colors: int, channels: int) -> np.ndarray:
    ramp = np.arange(colors)
    samples = [(ramp * (37 + 50 * c) + 11 * c) % 256 for c in range(channels)]
    if colors > 256:  # keep entries distinct
        samples[0] = ramp % 256
        samples[-1] = ramp // 256
    return np.stack(samples, axis=1).astype(np.uint8)


CASES = [
    # name, channels, colors, height, width, compression, strip rows
    ("l-k1-stored", 1, 1, 2, 3, "stored", 2),
    ("l-k1-deflate", 1, 1, 2, 3, "deflate", 2),
    ("l-k2-stored", 1, 2, 3, 5, "stored", 3),
    ("la-k3-deflate", 2, 3, 4, 3, "deflate", 4),
    ("rgb-k16-stored", 3, 16, 5, 7, "stored", 5),
    ("rgb-k16-deflate", 3, 16, 5, 7, "deflate", 5),
    ("rgba-k256-deflate", 4, 256, 16, 16, "deflate", 16),
    ("rgba-k256-stored", 4, 256, 16, 16, "stored", 16),
    ("rgb-k257-stored", 3, 257, 16, 17, "stored", 16),
    ("rgb-k257-deflate", 3, 257, 16, 17, "deflate", 16),
    ("l-k5-strips-stored", 1, 5, 5, 3, "stored", 2),
    ("l-k5-strips-deflate", 1, 5, 5, 3, "deflate", 2),
    ("l-k1-deflate-byte-runs", 1, 1, 2, 3, "deflate-byte-runs", 2),
    ("rgb-k16-deflate-byte-runs", 3, 16, 5, 7, "deflate-byte-runs", 5),
    ("rgba-k256-deflate-byte-runs", 4, 256, 16, 16, "deflate-byte-runs", 16),
    ("rgb-k257-deflate-byte-runs", 3, 257, 16, 17, "deflate-byte-runs", 16),
    ("l-k5-strips-deflate-byte-runs", 1, 5, 5, 3, "deflate-byte-runs", 2),
]

WIDE_INDEX_CASES = [  # b = 5-7 in every method: indices of 5, 6 and 7 bits
    (f"{mode}-k{colors}-blocks-{method}", channels, colors, 11, 9, method, 6)
    for mode, channels, colors in (("rgb", 3, 17), ("la", 2, 33), ("rgba", 4, 65))
    for method in ("stored", "deflate", "deflate-byte-runs", "lzma-packed-bands")
]
LARGE_PALETTE_CASES = [  # b = 10-16: the smallest palette of each width, grey
    (f"l-k{(1 << bits - 1) + 1}-{method}", 1, (1 << bits - 1) + 1, 6, 5, method, 4)
    for bits, method in zip(
        range(10, 17),
        ("stored", "deflate", "deflate-byte-runs", "lzma-packed-bands") * 2,
        strict=False,
    )
]

BLOCK_CASES = [  # same fields; indices from _blocks, so the encoder picks taller bands
    ("l-k2-blocks-deflate-byte-runs", 1, 2, 19, 23, "deflate-byte-runs", 19),
    ("la-k4-blocks-deflate-byte-runs", 2, 4, 21, 13, "deflate-byte-runs", 21),
    ("rgb-k16-blocks-deflate-byte-runs", 3, 16, 13, 24, "deflate-byte-runs", 13),
    ("rgb-k200-blocks-deflate-byte-runs", 3, 200, 17, 16, "deflate-byte-runs", 9),
    ("l-k1-blocks-lzma-packed-bands", 1, 1, 2, 3, "lzma-packed-bands", 2),
    ("l-k2-blocks-lzma-packed-bands", 1, 2, 19, 23, "lzma-packed-bands", 19),
    ("la-k4-blocks-lzma-packed-bands", 2, 4, 21, 13, "lzma-packed-bands", 21),
    ("rgb-k16-blocks-lzma-packed-bands", 3, 16, 13, 24, "lzma-packed-bands", 13),
    ("rgb-k257-blocks-lzma-packed-bands", 3, 257, 16, 17, "lzma-packed-bands", 9),
    # 70 rows in bands of 32: two full bands and a last one of 6 rows
    ("rgb-k16-bands32-lzma-packed-bands", 3, 16, 70, 5, "lzma-packed-bands", 70),
]

HASHED_OVER = 4096  # arrays of more entries are given by their SHA-256 (spec section 10)


def _large_palette(height: int, width: int, colors: int) -> np.ndarray:
    """Indices reaching the top of a large palette, so every bit of a field is used."""
    return (colors - 1 - _cycle(height, width, 29) * 7919) % colors


def _array_or_hash(key: str, values: np.ndarray, entries: int, layout: str) -> dict:
    """``key``: the array as JSON, or over HASHED_OVER entries, its bytes' SHA-256."""
    if entries <= HASHED_OVER:
        return {key: values.tolist()}
    return {f"{key}_sha256": hashlib.sha256(values.astype(layout).tobytes()).hexdigest()}


def _describe(data: bytes, palette: np.ndarray, indices: np.ndarray, **extra) -> dict:
    info = vqformat.read_info(data)
    pixels = palette[indices]
    return {
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        "colors": info.colors,
        "bits_per_index": info.bits_per_index,
        "compression": info.compression,
        "strip_rows": info.strip_rows,
        "bytes": len(data),
        **extra,
        **_array_or_hash("palette", palette, len(palette), "u1"),
        **_array_or_hash("indices", indices, indices.size, ">u2"),
        **_array_or_hash("pixels", pixels, indices.size, "u1"),
    }


def _with_ancillary_chunk(data: bytes) -> bytes:
    """Insert an unknown ancillary chunk before IEND: decoders must skip it."""
    iend = data.rindex(struct.pack(">I", 0) + IEND)
    extra = chunk_bytes(b"xTRA", b"ancillary data a decoder skips")
    assert zlib.crc32(extra[4:-4]) == struct.unpack(">I", extra[-4:])[0]
    return data[:iend] + extra + data[iend:]


def _write(
    name: str,
    data: bytes,
    palette: np.ndarray,
    indices: np.ndarray,
    folder: Path | None = None,
    **extra,
) -> None:
    folder = folder or (VECTORS / "large" if len(data) > LARGE_FILE else VECTORS)
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.vqi").write_bytes(data)
    description = _describe(data, palette, indices, **extra)
    (folder / f"{name}.json").write_text(json.dumps(description) + "\n")


def main() -> None:
    VECTORS.mkdir(parents=True, exist_ok=True)
    cases = (
        [(case, _cycle) for case in CASES]
        + [(case, _blocks) for case in BLOCK_CASES + WIDE_INDEX_CASES]
        + [(case, _large_palette) for case in LARGE_PALETTE_CASES]
    )
    for (name, channels, colors, height, width, method, strip_rows), pattern in cases:
        palette, indices = _palette(colors, channels), pattern(height, width, colors)
        data = vqformat.encode_indexed(palette, indices, compression=method, strip_rows=strip_rows)
        _write(name, data, palette, indices)
    # The worked example of spec/vqi.md section 9.
    palette = np.array([[0], [128], [255]], dtype=np.uint8)
    indices = np.array([[0, 1, 2], [2, 1, 0]])
    _write(
        "example-l-k3-stored",
        vqformat.encode_indexed(palette, indices, compression="stored"),
        palette,
        indices,
    )
    palette, indices = _palette(3, 3), _cycle(2, 4, 3)
    data = _with_ancillary_chunk(vqformat.encode_indexed(palette, indices, compression="stored"))
    _write("rgb-k3-ancillary", data, palette, indices, decode_only=True)
    write_metadata_vectors()
    write_long_lzma_vector()
    write_layout_vectors()
    write_ancillary_vector()


XMP_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/x-vqi"/>'
    '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
).encode()


def _exif_block() -> bytes:
    """A big-endian EXIF block: orientation 6 (rotate 90° clockwise to view), make, model."""
    header = b"MM\x00*" + struct.pack(">I", 8)
    entries = [(0x010F, 2, b"VQI\x00"), (0x0110, 2, b"Ref\x00"), (0x0112, 3, struct.pack(">H", 6))]
    ifd = struct.pack(">H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack(">HHI", tag, kind, len(value) if kind == 2 else 1)
        ifd += value.ljust(4, b"\x00")
    return header + ifd + struct.pack(">I", 0)


def _icc_profile() -> bytes:
    """A minimal ICC v2 header with a 'desc' tag: enough to name the profile."""
    description = b"vqi test profile\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(description)) + description
    desc += bytes(4 + 4 + 2 + 1 + 67)  # empty Unicode and ScriptCode descriptions
    tags = struct.pack(">I", 1) + struct.pack(">4sII", b"desc", 128 + 16, len(desc))
    body = tags + desc
    size = 128 + len(body)
    header = struct.pack(">I4s4s", size, b"none", bytes([2, 0x10, 0, 0]))
    header += b"mntrRGB XYZ " + bytes(12) + b"acsp" + bytes(128 - 40)
    return header + body


def _metadata_json(metadata: vqformat.Metadata) -> dict:
    """The metadata as JSON: profile and EXIF in hex, XMP and text as strings."""
    described: dict = {}
    if metadata.icc_profile:
        described["icc_profile"] = metadata.icc_profile.hex()
    if metadata.exif:
        described["exif"] = metadata.exif.hex()
    if metadata.xmp:
        described["xmp"] = metadata.xmp.decode()
    if metadata.text:
        described["text"] = dict(metadata.text)
    return described


def _with_chunks_before_palette(data: bytes, *chunks: bytes) -> bytes:
    """Insert chunks after the encoder's metadata chunks, just before PLTE."""
    plte = data.index(PLTE) - 4
    return data[:plte] + b"".join(chunks) + data[plte:]


def write_metadata_vectors() -> None:
    """meta-*: one vector per metadata chunk of spec section 3.3, and one whose
    malformed metadata chunks a decoder drops (its JSON lists what remains)."""
    palette, indices = _palette(3, 3), _cycle(2, 4, 3)
    cases = {
        "meta-iccp": vqformat.Metadata(icc_profile=_icc_profile()),
        "meta-exif": vqformat.Metadata(exif=_exif_block()),
        "meta-xmpt": vqformat.Metadata(xmp=XMP_PACKET),
        "meta-itxt": vqformat.Metadata(
            text={"Title": "Palette test", "Comment": "Ünïcödé, repeated. " * 20}
        ),
    }
    for name, metadata in cases.items():
        data = vqformat.encode_indexed(palette, indices, compression="deflate", metadata=metadata)
        _write(name, data, palette, indices, decode_only=True, metadata=_metadata_json(metadata))
    kept = vqformat.Metadata(exif=_exif_block(), text={"Title": "kept"})
    data = _with_chunks_before_palette(
        vqformat.encode_indexed(palette, indices, compression="stored", metadata=kept),
        chunk_bytes(b"iCCP", b"\x01" + b"not a zlib stream"),
        chunk_bytes(b"xMPt", b"\x07" + XMP_PACKET),
        chunk_bytes(b"iTXt", b"Title\x00\x00repeated key"),
        chunk_bytes(b"eXIf", b"II*\x00second EXIF"),
    )
    _write(
        "meta-dropped",
        data,
        palette,
        indices,
        decode_only=True,
        metadata=_metadata_json(kept),
        dropped=4,
    )


def write_long_lzma_vector() -> None:
    """An LZMA2 stream of over 64 KiB, so of several LZMA2 chunks: random 8-bit indices
    (stored as uncompressed chunks) above random 6-bit ones (compressed chunks)."""
    rng = np.random.default_rng(2026)
    indices = np.concatenate([rng.integers(0, 256, (256, 256)), rng.integers(0, 64, (64, 256))])
    palette = _palette(256, 1)
    data = vqformat.encode_indexed(
        palette, indices, compression="lzma-packed-bands", strip_rows=len(indices)
    )
    assert len(data) > 1 << 16
    _write("l-k256-long-lzma-packed-bands", data, palette, indices)


def _file(
    palette: np.ndarray,
    compression: int,
    strips: list[bytes],
    rows: int,
    height: int,
    width: int,
    extra: dict[int, bytes] | None = None,
) -> bytes:
    """A file from its strips' payloads; ``extra`` puts framed chunks before chunk number i
    (0 = PLTE, 1 = the first IDAT, ..., len(strips) + 1 = IEND)."""
    header = Header(width, height, palette.shape[1], len(palette), compression, rows)
    extra = extra or {}
    chunks = [chunk_bytes(PLTE, palette.tobytes())]
    chunks += [chunk_bytes(IDAT, payload) for payload in strips] + [chunk_bytes(IEND, b"")]
    body = b"".join(extra.get(number, b"") + chunk for number, chunk in enumerate(chunks))
    return SIGNATURE + chunk_bytes(HEAD, header.to_bytes()) + body


def _strips(indices: np.ndarray, rows: int, encode) -> list[bytes]:
    return [encode(indices[first : first + rows]) for first in range(0, len(indices), rows)]


def _byte_runs(indices: np.ndarray, bits: int, height: int, every_flag: bool = False) -> bytes:
    """A deflate-byte-runs strip of band height ``height``; ``every_flag`` sets the run flag
    of every byte, repeated or not (valid, spec section 7.3)."""
    if not every_flag:
        return DeflateByteRuns.encode_bands(
            indices, bits, height, lambda data: zlib.compress(data, 9)
        )
    packed = bitpack.pack(band_scan(indices, height), field_bits(bits))
    flags = zlib.compress(bitpack.pack(np.ones(len(packed), dtype=np.uint8), 1), 9)
    return bytes([height]) + struct.pack(">I", len(flags)) + flags + zlib.compress(packed, 9)


def _packed_bands(indices: np.ndarray, bits: int, height: int, field: int) -> bytes:
    """An lzma-packed-bands strip of band height ``height`` and field width ``field``."""
    codes, table = renumber(indices, LzmaPackedBands.table_size(bits))
    packed = bitpack.pack(band_scan(codes, height), field)
    return bytes([height, field]) + table + lzma2_compress(packed, 4)


LAYOUT_CASES = [  # name, channels, colours, height, width, strip rows, method code, strip
    ("la-k9-h3-deflate-byte-runs", 2, 9, 14, 11, 7, 2, lambda i: _byte_runs(i, 4, 3)),
    ("l-k600-h5-deflate-byte-runs", 1, 600, 12, 9, 12, 2, lambda i: _byte_runs(i, 10, 5)),
    (
        "l-k6-every-flag-deflate-byte-runs",
        1,
        6,
        9,
        13,
        9,
        2,
        lambda i: _byte_runs(i, 3, 2, every_flag=True),
    ),
    ("l-k1-h7-deflate-byte-runs", 1, 1, 3, 4, 3, 2, lambda i: _byte_runs(i, 0, 7)),
    ("rgb-k7-h3-f4-lzma-packed-bands", 3, 7, 14, 11, 7, 3, lambda i: _packed_bands(i, 3, 3, 4)),
    ("l-k2-h6-f8-lzma-packed-bands", 1, 2, 20, 9, 20, 3, lambda i: _packed_bands(i, 1, 6, 8)),
    ("l-k1-f8-lzma-packed-bands", 1, 1, 3, 4, 3, 3, lambda i: _packed_bands(i, 0, 2, 8)),
    ("rgba-k300-h7-lzma-packed-bands", 4, 300, 15, 6, 15, 3, lambda i: _packed_bands(i, 9, 7, 16)),
]


def write_layout_vectors() -> None:
    """Band heights, field widths and flags the reference encoder never picks, all valid:
    band scans of several bands with a shorter last one in both band methods."""
    for name, channels, colors, height, width, rows, code, strip in LAYOUT_CASES:
        palette, indices = _palette(colors, channels), _blocks(height, width, colors)
        data = _file(palette, code, _strips(indices, rows, strip), rows, height, width)
        _write(name, data, palette, indices, decode_only=True)


def write_ancillary_vector() -> None:
    """Unknown ancillary chunks before PLTE, between IDATs and before IEND, two of them
    named like critical chunks but for the case of their first letter: a decoder skips
    them all. The same file followed by bytes after IEND goes to after-iend/, since
    cutting those bytes short or altering them leaves a valid file."""
    palette, indices = _palette(5, 3), _blocks(7, 6, 5)
    codec = codec_by_name("deflate-byte-runs")
    strips = _strips(indices, 3, lambda i: codec.encode(i, 3))
    extra = {
        0: chunk_bytes(b"tEXT", b"not a metadata chunk"),
        2: chunk_bytes(b"iDAT", b"not index data"),
        3: chunk_bytes(b"xTRA", b""),
        4: chunk_bytes(b"iEND", b"not the end"),
    }
    data = _file(palette, codec.code, strips, 3, 7, 6, extra)
    _write("rgb-k5-ancillary-everywhere", data, palette, indices, decode_only=True)
    trailing = data + b"bytes after IEND\n"
    folder = VECTORS / "after-iend"
    _write("rgb-k5-trailing-bytes", trailing, palette, indices, folder, decode_only=True)


if __name__ == "__main__":
    main()
