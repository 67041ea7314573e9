"""The .vqi format layer: byte layout, bit packing, compression methods, reading, writing.

What a second implementation needs, and all that decoding needs: numpy, the standard
library, zlib-ng (zlib, faster, for reading) and libdeflate (for writing). It stores
whatever palette it is given and knows nothing of how one is fitted.
"""

from .container import MAX_COLORS, SIGNATURE, bits_for_colors
from .metadata import Metadata, MetadataWarning
from .methods import COMPRESSION_METHODS, DEFAULT_COMPRESSION
from .reading import (
    MAX_PIXELS,
    Source,
    VQIInfo,
    decode,
    decode_indexed,
    iter_index_strips,
    look_up,
    read_info,
    read_metadata,
    verify,
)
from .writing import encode_indexed, write_indexed, write_to

__all__ = [
    "COMPRESSION_METHODS",
    "DEFAULT_COMPRESSION",
    "MAX_COLORS",
    "MAX_PIXELS",
    "SIGNATURE",
    "Metadata",
    "MetadataWarning",
    "Source",
    "VQIInfo",
    "bits_for_colors",
    "decode",
    "decode_indexed",
    "encode_indexed",
    "iter_index_strips",
    "look_up",
    "read_info",
    "read_metadata",
    "verify",
    "write_indexed",
    "write_to",
]
