"""The quantizer: palette fitting, assignment of pixels to entries, dithering.

Pixels in, a palette and indices out; it knows nothing of the file format.
scikit-learn and scipy are imported only when a fit needs them.
"""
