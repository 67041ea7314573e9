"""Bench images that ship inside installed wheels, so the bench runs offline.

Colour: scikit-learn's china and flower, scikit-image's astronaut, coffee, chelsea and
rocket. Grey: the raccoon face when a SciPy old enough to ship it (``scipy.misc.face``)
is installed, else grey versions of the colour photos. Extra image files can be added.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

SKLEARN_IMAGES = ("china.jpg", "flower.jpg")
SKIMAGE_IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
HELD_OUT_PHOTOS = ("immunohistochemistry", "hubble_deep_field")
"""scikit-image photos no palette or coder setting was chosen on, to check against."""


def colour_photos(extra: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Name -> (H, W, 3) uint8 for every bench photo whose package is installed."""
    photos: dict[str, np.ndarray] = {}
    try:
        from sklearn.datasets import load_sample_image

        for name in SKLEARN_IMAGES:
            photos[name.removesuffix(".jpg")] = load_sample_image(name)
    except ImportError:
        pass
    try:
        import skimage.data

        for name in SKIMAGE_IMAGES:
            photos[name] = getattr(skimage.data, name)()
    except ImportError:
        pass
    for path in extra:
        photos[path] = np.asarray(Image.open(path).convert("RGB"))
    return photos


def _raccoon_face() -> np.ndarray | None:
    try:
        from scipy import misc

        return misc.face(gray=True)
    except (ImportError, AttributeError):
        return None


def grey_photos(colour: dict[str, np.ndarray], extra: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Name -> (H, W) uint8: the raccoon face if available, else the colour photos in grey."""
    face = _raccoon_face()
    photos = (
        {"raccoon-face": face}
        if face is not None
        else {
            name: np.asarray(Image.fromarray(image).convert("L")) for name, image in colour.items()
        }
    )
    for path in extra:
        photos[path] = np.asarray(Image.open(path).convert("L"))
    return photos
