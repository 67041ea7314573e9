"""vqi: images stored as a k-means palette plus bit-packed indices.

``import vqformat`` also registers the format with Pillow, so ``Image.open("x.vqi")``
and ``image.save("x.vqi")`` work.
"""

from .codec import (
    MAX_PIXELS,
    VQIInfo,
    decode,
    decode_indexed,
    encode,
    encode_indexed,
    quantize,
    read_info,
    save,
    verify,
    write_indexed,
)
from .errors import VQIError
from .pillow_plugin import register_vqi_opener

__version__ = "1.0.0"

__all__ = [
    "MAX_PIXELS",
    "VQIError",
    "VQIInfo",
    "__version__",
    "decode",
    "decode_indexed",
    "encode",
    "encode_indexed",
    "quantize",
    "read_info",
    "register_vqi_opener",
    "save",
    "verify",
    "write_indexed",
]

register_vqi_opener()
