"""vqi: images stored as a k-means palette plus bit-packed indices.

``import vqformat`` also registers the format with Pillow, so ``Image.open("x.vqi")``
and ``image.save("x.vqi")`` work. Layers, each importing only those before it:
``format`` (the file), ``quantizer`` (palettes), ``options`` and ``pipeline`` (encode),
``dataset``, ``pillow_plugin``, ``cli``.
"""

from . import dataset
from .errors import VQIError
from .format import (
    MAX_PIXELS,
    Metadata,
    MetadataWarning,
    VQIInfo,
    decode,
    decode_indexed,
    encode_indexed,
    read_info,
    read_metadata,
    verify,
    write_indexed,
)
from .options import EncodeOptions
from .pillow_plugin import register_vqi_opener
from .pipeline import QualityWarning, encode, quantize, save

__version__ = "1.0.0"

__all__ = [
    "MAX_PIXELS",
    "EncodeOptions",
    "Metadata",
    "MetadataWarning",
    "QualityWarning",
    "VQIError",
    "VQIInfo",
    "__version__",
    "dataset",
    "decode",
    "decode_indexed",
    "encode",
    "encode_indexed",
    "quantize",
    "read_info",
    "read_metadata",
    "register_vqi_opener",
    "save",
    "verify",
    "write_indexed",
]

register_vqi_opener()
