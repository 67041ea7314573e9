"""Metadata chunks (spec §3.3): colour profile, EXIF, XMP and text, modelled on PNG's.

They are ancillary, so a decoder that ignores them still shows the right pixels. A
chunk whose CRC matches but whose content is malformed (bad zlib stream, too large,
repeated) is dropped with a ``MetadataWarning``: the pixels never depend on it.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import VQIError, warn_caller
from .container import chunk_bytes

ICCP = b"iCCP"
EXIF = b"eXIf"
XMPT = b"xMPt"
ITXT = b"iTXt"
METADATA_CHUNKS = (ICCP, EXIF, XMPT, ITXT)

MAX_PROFILE_BYTES = 16 << 20
"""Largest ICC profile, EXIF block or XMP packet, decompressed (spec §3.3)."""
MAX_TEXT_BYTES = 1 << 20
"""Largest text value, decompressed."""
MAX_TEXT_ENTRIES = 64
"""Text chunks a decoder reads; with the limits above, metadata costs at most 112 MiB."""
MAX_KEY_BYTES = 79
EXIF_PREFIX = b"Exif\x00\x00"  # JPEG's APP1 marker content, which PNG and VQI leave out
STORED, ZLIB = 0, 1
_INFLATE_PIECE = 1 << 20
_SLACK = 64 + MAX_KEY_BYTES  # header bytes and zlib's worst-case growth on stored blocks

CHUNK_LIMITS = {
    ICCP: MAX_PROFILE_BYTES + MAX_PROFILE_BYTES // 1000 + _SLACK,
    EXIF: MAX_PROFILE_BYTES + MAX_PROFILE_BYTES // 1000 + _SLACK,
    XMPT: MAX_PROFILE_BYTES + MAX_PROFILE_BYTES // 1000 + _SLACK,
    ITXT: MAX_TEXT_BYTES + MAX_TEXT_BYTES // 1000 + _SLACK,
}
"""Largest data of each chunk a decoder reads; a longer one is skipped unread."""


class MetadataWarning(UserWarning):
    """A metadata chunk was malformed and dropped; the image itself is intact."""


@dataclass(frozen=True, repr=False)
class Metadata:
    """An image's colour profile, EXIF (without the "Exif\\0\\0" prefix), XMP and text."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    text: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "icc_profile", _blob("icc_profile", self.icc_profile))
        object.__setattr__(self, "exif", _exif(self.exif))
        object.__setattr__(self, "xmp", _blob("xmp", self.xmp))
        object.__setattr__(self, "text", MappingProxyType(_text(self.text)))

    def __bool__(self) -> bool:
        return bool(self.icc_profile or self.exif or self.xmp or self.text)

    def __repr__(self) -> str:
        """Sizes rather than contents: a profile may be megabytes."""
        sizes = [
            f"{name}=<{len(value)} bytes>"
            for name in ("icc_profile", "exif", "xmp")
            if (value := getattr(self, name))
        ]
        return f"Metadata({', '.join([*sizes, f'text={dict(self.text)!r}'])})"

    def check_channels(self, channels: int) -> None:
        """VQIError unless the colour profile can describe samples of this many channels
        (spec §3.3): a CMYK profile on RGB samples would show wrong colours."""
        if self.icc_profile and not profile_fits(self.icc_profile, channels):
            space = self.icc_profile[16:20].decode("latin-1").strip()
            kind = "grey" if channels <= 2 else "RGB"
            raise VQIError(f"an ICC profile for {space!r} cannot describe {kind} samples")

    def for_channels(self, channels: int) -> Metadata:
        """This metadata less a colour profile that cannot describe the samples."""
        if self.icc_profile and not profile_fits(self.icc_profile, channels):
            return dataclasses.replace(self, icc_profile=None)
        return self

    def chunks(self) -> Iterable[bytes]:
        """The framed chunks, in the order encoders write them (after HEAD)."""
        if self.icc_profile:
            yield chunk_bytes(ICCP, bytes([ZLIB]) + zlib.compress(self.icc_profile, 9))
        if self.exif:
            yield chunk_bytes(EXIF, self.exif)
        if self.xmp:
            yield chunk_bytes(XMPT, _maybe_compressed(self.xmp))
        for key, value in self.text.items():
            data = key.encode() + b"\x00" + _maybe_compressed(value.encode())
            yield chunk_bytes(ITXT, data)


class MetadataParser:
    """A Reader's chunk sink that parses each metadata chunk as it is read and keeps
    only the result, so at most the limits of spec §3.3 are held however many chunks
    a file repeats. A malformed chunk is dropped with a ``MetadataWarning``."""

    def __init__(self) -> None:
        self._found: dict[str, Any] = {"text": {}}

    def limit(self, chunk_type: bytes) -> int | None:
        """The chunk's limit; 0 (read nothing) once it can no longer be kept."""
        if chunk_type not in CHUNK_LIMITS:
            return None
        return 0 if self._full(chunk_type) else CHUNK_LIMITS[chunk_type]

    def take(self, chunk_type: bytes, data: bytes | None, at: int) -> None:
        try:
            self._parse(chunk_type, data)
        except VQIError as error:
            warn_caller(
                MetadataWarning(f"dropped {chunk_type.decode()} chunk at byte {at}: {error}")
            )

    def metadata(self) -> Metadata:
        return Metadata(**self._found)

    def _full(self, chunk_type: bytes) -> bool:
        if chunk_type == ITXT:
            return len(self._found["text"]) == MAX_TEXT_ENTRIES
        return _NAMES[chunk_type] in self._found

    def _parse(self, chunk_type: bytes, data: bytes | None) -> None:
        if chunk_type == ITXT and self._full(chunk_type):
            raise VQIError(f"more than {MAX_TEXT_ENTRIES} text entries")
        if self._full(chunk_type):
            raise VQIError(f"a second {_NAMES[chunk_type]} chunk")
        if data is None:
            raise VQIError(f"longer than the limit of {CHUNK_LIMITS[chunk_type]} bytes")
        if chunk_type == ITXT:
            key, value = _text_entry(data)
            if key in self._found["text"]:
                raise VQIError(f"a second text entry {key!r}")
            self._found["text"][key] = value
        else:
            self._found[_NAMES[chunk_type]] = _PARSERS[chunk_type](data)


def profile_fits(profile: bytes, channels: int) -> bool:
    """Whether an ICC profile describes samples of this many channels: its header
    names its colour space ('GRAY' or 'RGB '), so a CMYK profile never tags RGB."""
    return profile[16:20] == (b"GRAY" if channels <= 2 else b"RGB ")


def _profile(data: bytes) -> bytes:
    if data[:1] != bytes([ZLIB]):
        raise VQIError("unknown compression flag")
    return _inflate(data[1:], MAX_PROFILE_BYTES)


def _raw_exif(data: bytes) -> bytes:
    if len(data) > MAX_PROFILE_BYTES:
        raise VQIError(f"more than {MAX_PROFILE_BYTES} bytes")
    return data


def _packet(data: bytes) -> bytes:
    return _unpack(data, MAX_PROFILE_BYTES)


_NAMES = {ICCP: "icc_profile", EXIF: "exif", XMPT: "xmp"}
_PARSERS = {ICCP: _profile, EXIF: _raw_exif, XMPT: _packet}


def _text_entry(data: bytes) -> tuple[str, str]:
    key, separator, rest = data.partition(b"\x00")
    if not separator:
        raise VQIError("no NUL after the key")
    try:
        return _key(key.decode()), _unpack(rest, MAX_TEXT_BYTES).decode()
    except UnicodeDecodeError:
        raise VQIError("text is not UTF-8") from None


def _maybe_compressed(data: bytes) -> bytes:
    """Flag byte then data, deflated when that saves bytes (as PNG writers do for iTXt)."""
    packed = zlib.compress(data, 9)
    return bytes([ZLIB]) + packed if len(packed) < len(data) else bytes([STORED]) + data


def _unpack(data: bytes, limit: int) -> bytes:
    flag, body = data[:1], data[1:]
    if flag == bytes([STORED]):
        if len(body) > limit:
            raise VQIError(f"more than {limit} bytes")
        return body
    if flag == bytes([ZLIB]):
        return _inflate(body, limit)
    raise VQIError("unknown compression flag")


def _inflate(data: bytes, limit: int) -> bytes:
    """Inflate a zlib stream of at most ``limit`` bytes. Its size is measured first,
    a piece at a time, so a decompression bomb is refused having cost one piece."""
    size = _inflated_size(data, limit)
    return zlib.decompress(data, bufsize=max(1, size))


def _inflated_size(data: bytes, limit: int) -> int:
    inflater, size = zlib.decompressobj(), 0
    try:
        while data and size <= limit:
            size += len(inflater.decompress(data, _INFLATE_PIECE))
            data = inflater.unconsumed_tail
        if size <= limit:
            size += len(inflater.flush())
    except zlib.error as error:
        raise VQIError(f"bad zlib stream ({error})") from None
    if size > limit:
        raise VQIError(f"inflates to more than {limit} bytes")
    if not inflater.eof or inflater.unused_data:
        raise VQIError("zlib stream is truncated or followed by other bytes")
    return size


def _blob(name: str, value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise VQIError(f"{name} must be bytes, got {type(value).__name__}")
    value = bytes(value)
    if len(value) > MAX_PROFILE_BYTES:
        raise VQIError(f"{name} of {len(value)} bytes exceeds {MAX_PROFILE_BYTES}")
    return value or None


def _exif(value: object) -> bytes | None:
    """EXIF as Pillow gives it (``Image.Exif``, or bytes with or without the prefix)."""
    if hasattr(value, "tobytes") and not isinstance(value, memoryview):
        value = value.tobytes()
    exif = _blob("exif", value)
    if exif and exif.startswith(EXIF_PREFIX):
        return exif[len(EXIF_PREFIX) :] or None
    return exif


def _text(text: object) -> dict[str, str]:
    if not isinstance(text, Mapping):
        raise VQIError(f"text must be a mapping of str to str, got {type(text).__name__}")
    if len(text) > MAX_TEXT_ENTRIES:
        raise VQIError(f"at most {MAX_TEXT_ENTRIES} text entries, got {len(text)}")
    entries = {}
    for key, value in text.items():
        if not isinstance(value, str) or len(_utf8(value)) > MAX_TEXT_BYTES:
            raise VQIError(f"text value of {key!r} must be a str of at most {MAX_TEXT_BYTES} bytes")
        entries[_key(key)] = value
    return entries


def _key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(_utf8(key)) <= MAX_KEY_BYTES or "\x00" in key:
        raise VQIError(f"text key {key!r} must be 1..{MAX_KEY_BYTES} UTF-8 bytes without NUL")
    return key


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:  # lone surrogates
        raise VQIError(f"text {text!r} cannot be written as UTF-8") from None
