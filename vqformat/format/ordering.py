"""Symbol ordering: give index values that often sit side by side neighbouring codes.

LZMA's literal coder predicts a byte from the high bits of the byte before it, so it
pays to renumber the palette such that indices that are frequently adjacent in the
image share their high bits. The order is computed from the index image alone
(which pairs of values touch, horizontally and vertically), so it works for any
palette, including one given to ``encode_indexed`` that must be stored as it is:
the renumbering lives in the compressed strip, never in the palette.
"""

from __future__ import annotations

import numpy as np


def adjacency_counts(indices: np.ndarray, symbols: int) -> np.ndarray:
    """Symmetric (symbols, symbols) counts of horizontally or vertically adjacent pairs."""
    values = indices.astype(np.int64)
    pairs = np.concatenate(
        [
            (values[:, 1:] * symbols + values[:, :-1]).ravel(),
            (values[1:] * symbols + values[:-1]).ravel(),
        ]
    )
    counts = np.bincount(pairs, minlength=symbols * symbols).reshape(symbols, symbols)
    counts = counts + counts.T
    np.fill_diagonal(counts, 0)
    return counts


def adjacency_order(indices: np.ndarray, symbols: int) -> np.ndarray:
    """A permutation ``order`` of 0..symbols-1: code ``c`` stands for index ``order[c]``.

    Greedy chain: start at the most frequent index, then repeatedly append the unused
    index that touches the last one most often (the most frequent unused index when
    none touches it). One step per symbol, so at most 256 numpy steps.
    """
    counts = adjacency_counts(indices, symbols)
    frequency = np.bincount(indices.ravel(), minlength=symbols)
    unused = np.ones(symbols, dtype=bool)
    order = np.empty(symbols, dtype=np.int64)
    current = int(np.argmax(frequency))
    for position in range(symbols):
        order[position] = current
        unused[current] = False
        if position + 1 == symbols:
            break
        affinity = np.where(unused, counts[current], -1)
        current = int(np.argmax(affinity))
        if affinity[current] <= 0:
            current = int(np.argmax(np.where(unused, frequency, -1)))
    return order
