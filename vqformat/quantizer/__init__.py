"""The quantizer: palette fitting, assignment of pixels to entries, dithering.

Pixels in, a palette and indices out; it knows nothing of the file format.
scipy (k-d trees, filters) and scikit-learn (mini-batch k-means) are imported only when
a fit needs them.
"""
