"""Pillow plugin: ``Image.open`` and ``Image.save`` for .vqi, registered by ``import vqformat``.

Modelled on Pillow's own PNG and QOI plugins. Opening reads the signature, HEAD, PLTE
and the metadata chunks before the first IDAT (a file cut or damaged after HEAD, or
after PLTE for mode P, still opens, without metadata); pixels are decoded strip by
strip on ``load()``. Pillow's decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) is the
pixel limit here, so the codec's own limit is not applied.

Open modes: a grey file (L or LA samples) opens as ``L`` or ``LA`` whatever its
palette size, as greyscale PNGs do; a colour file with at most 256 entries opens as
``P`` with an ``RGB`` or ``RGBA`` palette (per-entry alpha), so ``np.asarray(im)`` is
the stored indices; a larger colour palette opens as ``RGB`` or ``RGBA``.
See the README for why.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile, ImagePalette, PngImagePlugin

from .errors import VQIError
from .format import SIGNATURE, iter_index_strips, look_up, verify, write_indexed
from .format.atomic import atomic_output
from .format.container import Header, Reader
from .format.metadata import EXIF_PREFIX, Metadata, MetadataParser
from .format.methods import codec_by_code
from .format.reading import check_plausible, collect_metadata, iter_decodable_strips
from .options import EncodeOptions
from .pipeline import quantize_with

FORMAT = "VQI"
MIME_TYPE = "image/x-vqi"
EXTENSION = ".vqi"
MAX_PALETTE_MODE_COLORS = 256  # Pillow's "P" holds 8-bit indices

_SAVED_MODES = ("L", "LA", "RGB", "RGBA")
_CONVERTED_MODES = {"1": "L", "PA": "RGBA"}
_WITH_ALPHA = {"L": "LA", "RGB": "RGBA"}


def _accept(prefix: bytes) -> bool:
    return prefix[: len(SIGNATURE)] == SIGNATURE


def _open_mode(header: Header) -> str:
    """The Pillow mode of a file: "P" for a colour palette Pillow can hold, else the samples'."""
    if header.channels >= 3 and header.colors <= MAX_PALETTE_MODE_COLORS:
        return "P"
    return header.mode


class VQIImageFile(ImageFile.ImageFile):
    """A .vqi file opened lazily: ``_open`` reads the header, ``load()`` decodes."""

    format = FORMAT
    format_description = "VQI palette image"

    def _open(self) -> None:
        assert self.fp is not None
        try:
            parser = MetadataParser()
            reader = Reader(self.fp, sink=parser)
            header = reader.header
            self._after_head = reader.offset
            method = codec_by_code(header.compression).name
            mode = _open_mode(header)
            palette = reader.read_palette() if mode == "P" else None
            if palette is not None:
                self.palette = ImagePalette.ImagePalette(header.mode, palette)
                self.palette.dirty = 1  # Image.load hands a dirty palette to the core image
        except VQIError as error:  # Pillow's signal for "not readable by this plugin"
            raise SyntaxError(f"broken VQI header: {error}") from error
        self._mode = mode
        self._size = (header.width, header.height)
        self._header = header
        palette, metadata = _palette_and_metadata(reader, parser, palette)
        self._set_metadata(metadata)
        self.info["compression"] = method
        self.info["colors"] = header.colors
        # The decoder goes on from the first IDAT with this reader, so HEAD and PLTE
        # are parsed once; a file damaged before it is parsed afresh on load(), which
        # reports the damage. A plain tuple, not ImageFile._Tile (missing before Pillow 11).
        box = (0, 0, *self._size)
        if palette is None:
            self.tile = [(FORMAT, box, 0, ())]
        else:
            self.tile = [(FORMAT, box, reader.offset, (reader, palette))]

    def _set_metadata(self, metadata: Metadata) -> None:
        """Pillow's PNG conventions: text entries as str in ``info`` and ``text``, EXIF
        with its "Exif\\0\\0" prefix (so ``getexif()`` works), XMP and profile as bytes."""
        self.text = dict(metadata.text)
        self.info.update(self.text)
        if metadata.icc_profile:
            self.info["icc_profile"] = metadata.icc_profile
        if metadata.exif:
            self.info["exif"] = EXIF_PREFIX + metadata.exif
        if metadata.xmp:
            self.info["xmp"] = metadata.xmp

    def load_prepare(self) -> None:
        """Before Pillow allocates the image: a file too small to hold it is rejected
        (unless truncated images are wanted, whose missing strips stay zero)."""
        assert self.fp is not None
        if not ImageFile.LOAD_TRUNCATED_IMAGES:
            self.fp.seek(self._after_head)
            try:
                check_plausible(self.fp, self._header)
            except VQIError as error:
                raise OSError(f"broken VQI file: {error}") from error
        super().load_prepare()

    def load_read(self, read_bytes: int) -> bytes:
        """Plain reads. Defining it tells ``ImageFile.Parser`` that this decoder pulls
        from the file and cannot be fed piecemeal, so the parser decodes on ``close()``."""
        assert self.fp is not None
        return self.fp.read(read_bytes)

    def verify(self) -> None:
        """Check every chunk's CRC and the chunk order without decoding pixels."""
        if self.fp is None:
            raise RuntimeError("verify must be called directly after open")
        self.fp.seek(0)
        try:
            verify(self.fp)
        except VQIError as error:
            raise SyntaxError(f"broken VQI file: {error}") from error
        super().verify()


def _palette_and_metadata(
    reader: Reader, parser: MetadataParser, palette: bytes | None
) -> tuple[bytes | None, Metadata]:
    """PLTE's bytes and the metadata before the first IDAT, or (None, no metadata) if
    the file is cut or damaged there: opening needs only the header (and PLTE for mode
    P); ``load()`` reports the damage."""
    try:
        if palette is None:
            palette = reader.read_palette()
        return palette, collect_metadata(reader, parser)
    except VQIError:
        return None, Metadata()


class VQIDecoder(ImageFile.PyDecoder):
    """Decodes the whole file one strip at a time into the image; memory is one strip."""

    _pulls_fd = True

    def decode(self, buffer: bytes) -> tuple[int, int]:
        """Decode every strip; a truncated or damaged file raises OSError, unless
        ``ImageFile.LOAD_TRUNCATED_IMAGES`` is set: then, as for PNG, CRCs are not
        checked and every strip that decodes keeps its rows (strips decode alone, so a
        damaged one costs only its own rows); the rest stay zero."""
        assert self.fd is not None
        salvage = ImageFile.LOAD_TRUNCATED_IMAGES
        try:
            if self.args and not salvage:  # open() read up to the first IDAT
                reader, palette = self.args
            else:
                self.fd.seek(0)
                reader = Reader(self.fd, check_crc=not salvage)
                palette = reader.read_palette()
            self._decode_strips(
                reader, palette, iter_decodable_strips if salvage else iter_index_strips
            )
        except VQIError as error:
            if not salvage:
                raise OSError(f"broken VQI file: {error}") from error
        return -1, 0

    def _decode_strips(
        self,
        reader: Reader,
        palette: bytes,
        strips: Callable[[Reader], Iterator[tuple[int, np.ndarray]]],
    ) -> None:
        entries = self._pixel_table(reader.header, palette)
        for first_row, indices in strips(reader):
            rows = indices
            if entries is not None:
                rows = np.empty((*indices.shape, *entries.shape[1:]), dtype=np.uint8)
                look_up(entries, indices, rows)
            self._put_rows(first_row, rows)

    def _pixel_table(self, header: Header, palette: bytes) -> np.ndarray | None:
        """The samples each index stands for, or None when the image holds the
        indices themselves (mode P, whose palette ``_open`` set)."""
        entries = np.frombuffer(palette, dtype=np.uint8)
        if self.mode == "P":
            return None
        if header.channels == 1:
            return entries
        return entries.reshape(header.colors, header.channels)

    def _put_rows(self, first_row: int, rows: np.ndarray) -> None:
        """Copy a band of rows into the image: ``set_as_raw`` fills the state's extents."""
        self.state.yoff, self.state.ysize = first_row, len(rows)
        self.set_as_raw(np.ascontiguousarray(rows, dtype=np.uint8))  # any buffer; no copy


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    options = EncodeOptions.from_mapping({**image_metadata(im), **im.encoderinfo})
    entries, indices = _palette_and_indices(im, options, im.encoderinfo)
    metadata = options.metadata()
    if "icc_profile" not in im.encoderinfo:  # the image's own, maybe from before a convert()
        metadata = metadata.for_channels(entries.shape[1])
    write_indexed(
        fp,
        entries,
        indices,
        compression=options.compression,
        strip_rows=options.strip_rows,
        metadata=metadata,
    )


def image_metadata(im: Image.Image) -> dict[str, Any]:
    """The image's own profile, EXIF, XMP and text (PNG's ``im.text``), which the
    ``icc_profile``, ``exif``, ``xmp`` and ``text`` keywords replace."""
    kept = {name: im.info[name] for name in ("icc_profile", "exif", "xmp") if name in im.info}
    text = getattr(im, "text", None)
    if isinstance(text, Mapping) and text:
        kept["text"] = {str(key): str(value) for key, value in text.items()}
    return kept


def _palette_and_indices(
    im: Image.Image, options: EncodeOptions, keywords: dict
) -> tuple[np.ndarray, np.ndarray]:
    """A P image keeps its palette and indices unless ``colors`` is given and smaller
    than its palette (``optimize`` first drops unused entries); every other image is
    quantized to ``colors`` (256 by default)."""
    if im.mode == "P":
        entries, indices = _stored_palette(im)
        if keywords.get("optimize"):
            entries, indices = _drop_unused_entries(entries, indices)
        if "colors" not in keywords or len(entries) <= options.colors:
            return entries, indices
        im = im.convert("RGBA" if entries.shape[1] == 4 else "RGB")
    return quantize_with(np.asarray(_savable(im)), options)


def _stored_palette(im: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The (k, 3 or 4) palette and (H, W) indices of a P image, exactly as Pillow renders them.

    Alpha comes from an RGBA palette or from ``info["transparency"]`` (PNG-8 and GIF
    style); indices past the palette's end render black and opaque, so such entries
    are added.
    """
    indices = np.asarray(im)
    transparency = im.info.get("transparency")
    has_alpha = im.palette.mode == "RGBA" or transparency is not None
    channels = 4 if has_alpha else 3
    listed = np.array(im.getpalette("RGBA" if has_alpha else "RGB"), dtype=np.uint8)
    listed = listed.reshape(-1, channels)
    count = max(len(listed), int(indices.max(initial=0)) + 1)
    entries = np.zeros((count, channels), dtype=np.uint8)
    entries[:, 3:] = 255
    entries[: len(listed)] = listed
    if im.palette.mode != "RGBA":
        _apply_transparency(entries, transparency)
    return entries, indices


def _apply_transparency(entries: np.ndarray, transparency: int | bytes | None) -> None:
    if isinstance(transparency, int):
        if 0 <= transparency < len(entries):
            entries[transparency, 3] = 0
    elif isinstance(transparency, bytes):
        alphas = np.frombuffer(transparency[: len(entries)], dtype=np.uint8)
        entries[: len(alphas), 3] = alphas


def _drop_unused_entries(entries: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the palette entries some pixel uses, renumbering indices in palette order."""
    used = np.bincount(indices.ravel(), minlength=len(entries)) > 0
    renumber = (np.cumsum(used) - 1).astype(indices.dtype)
    return entries[used], renumber[indices]


def _savable(im: Image.Image) -> Image.Image:
    """Convert to the L, LA, RGB or RGBA image that holds the same pixels, or refuse."""
    if im.mode in _CONVERTED_MODES:
        return im.convert(_CONVERTED_MODES[im.mode])
    if im.mode in _WITH_ALPHA and im.info.get("transparency") is not None:
        return im.convert(_WITH_ALPHA[im.mode])  # colour-key transparency becomes alpha
    if im.mode not in _SAVED_MODES:
        raise VQIError(
            f"cannot write mode {im.mode} as VQI: it stores 8-bit L, LA, RGB or RGBA "
            f"samples; convert first, e.g. im.convert('RGB')"
        )
    return im


XMP_PNG_KEY = "XML:com.adobe.xmp"  # where PNG keeps XMP: an iTXt chunk of this key


def metadata_save_keywords(metadata: Metadata, image_format: str) -> dict[str, Any]:
    """``Image.save`` keywords that write this metadata in ``image_format``, as far as
    its Pillow writer can: PNG takes text and XMP as iTXt chunks; WebP, JPEG and TIFF
    take ``icc_profile``, ``exif`` and ``xmp``; writers ignore keywords they lack."""
    keywords: dict[str, Any] = {}
    if metadata.icc_profile:
        keywords["icc_profile"] = metadata.icc_profile
    if metadata.exif:
        keywords["exif"] = EXIF_PREFIX + metadata.exif
    if metadata.xmp:
        keywords["xmp"] = metadata.xmp
    if image_format == "PNG" and (metadata.text or metadata.xmp):
        chunks = PngImagePlugin.PngInfo()
        for key, value in metadata.text.items():
            chunks.add_itxt(key, value, zip=len(value) > 1024)
        if metadata.xmp:
            chunks.add_itxt(XMP_PNG_KEY, metadata.xmp.decode(errors="replace"), zip=True)
        keywords["pnginfo"] = chunks
    return keywords


def _saves_vqi(fp: object, format: str | None) -> bool:
    """Whether ``Image.save(fp, format)`` writes a .vqi file to a path (by name or format)."""
    if not isinstance(fp, (str, bytes, os.PathLike)):
        return False
    if format:
        return format.upper() == FORMAT
    extension = os.path.splitext(os.fsdecode(fp))[1].lower()
    return Image.EXTENSION.get(extension) == FORMAT


def _saving_vqi_atomically(save: Callable[..., None]) -> Callable[..., None]:
    """``Image.Image.save`` that writes a .vqi path through ``atomic_output``.

    Pillow opens and truncates a path before any plugin sees the image or its keywords,
    and offers no hook before that, so a bad keyword or a failed encode would leave an
    existing file empty. A .vqi path is written to a temporary file beside it that
    replaces it only when the save completes (keeping its mode; a link is written
    through). Every other save is Pillow's own, unchanged.
    """

    @functools.wraps(save)
    def save_vqi_atomically(
        self: Image.Image, fp: Any, format: str | None = None, **params: Any
    ) -> None:
        if not _saves_vqi(fp, format):
            return save(self, fp, format, **params)
        with atomic_output(fp, force=True) as stream:
            save(self, stream, FORMAT, **params)
        return None

    save_vqi_atomically.saves_vqi_atomically = True  # type: ignore[attr-defined]
    return save_vqi_atomically


def register_vqi_opener() -> None:
    """Register .vqi with Pillow: open by signature, save, extension and MIME type, and
    make ``Image.save`` to a .vqi path atomic (see ``_saving_vqi_atomically``).

    ``import vqformat`` calls this; calling it again changes nothing.
    """
    Image.register_open(FORMAT, VQIImageFile, _accept)
    Image.register_decoder(FORMAT, VQIDecoder)
    Image.register_save(FORMAT, _save)
    if not getattr(Image.Image.save, "saves_vqi_atomically", False):
        Image.Image.save = _saving_vqi_atomically(Image.Image.save)  # type: ignore[method-assign]
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME_TYPE)
