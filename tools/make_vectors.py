"""Write the reference files of spec/vectors/ from their palettes and indices.

Run after a deliberate change of the vectors only; tests/test_vectors.py checks that
the decoder reads exactly these pixels and that the encoder writes what they hold
(byte for byte where spec/vqi.md section 10 pins the bytes).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

import vqformat
from vqformat.format.container import IEND, PLTE, chunk_bytes

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"


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
]


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
        "palette": palette.tolist(),
        "indices": indices.tolist(),
        "pixels": pixels.tolist(),
    }


def _with_ancillary_chunk(data: bytes) -> bytes:
    """Insert an unknown ancillary chunk before IEND: decoders must skip it."""
    iend = data.rindex(struct.pack(">I", 0) + IEND)
    extra = chunk_bytes(b"xTRA", b"ancillary data a decoder skips")
    assert zlib.crc32(extra[4:-4]) == struct.unpack(">I", extra[-4:])[0]
    return data[:iend] + extra + data[iend:]


def _write(name: str, data: bytes, palette: np.ndarray, indices: np.ndarray, **extra) -> None:
    (VECTORS / f"{name}.vqi").write_bytes(data)
    description = _describe(data, palette, indices, **extra)
    (VECTORS / f"{name}.json").write_text(json.dumps(description) + "\n")


def main() -> None:
    VECTORS.mkdir(parents=True, exist_ok=True)
    cases = [(case, _cycle) for case in CASES] + [(case, _blocks) for case in BLOCK_CASES]
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


if __name__ == "__main__":
    main()
