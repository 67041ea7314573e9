"""k-means for large palettes: k-d tree Lloyd with seeds split by cluster."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import vqformat
from vqformat.quantizer import large
from vqformat.quantizer import palette as palette_fitting


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1e6), min_size=1, max_size=40),
    st.data(),
)
def test_allocation_fills_the_total_within_each_capacity(demand, data):
    capacity = np.array(
        data.draw(st.lists(st.integers(0, 50), min_size=len(demand), max_size=len(demand)))
    )
    total = data.draw(st.integers(0, int(capacity.sum())))
    shares = large.allocate(np.array(demand), capacity, total)
    assert shares.sum() == total
    assert np.all((shares >= 0) & (shares <= capacity))


def test_allocation_follows_demand():
    shares = large.allocate(np.array([1.0, 3.0, 0.0]), np.array([100, 100, 100]), 40)
    assert shares.tolist() == [10, 30, 0]


def _noisy_image(seed: int = 0) -> np.ndarray:
    """A smooth colour field plus noise: about 20,000 distinct colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:160, :160]
    base = np.stack([x * 1.5, y * 1.5, (x + y) * 0.7], axis=2)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _psnr(pixels: np.ndarray, palette: np.ndarray) -> float:
    table = palette_fitting.color_table(pixels.reshape(-1, 3))
    return palette_fitting.psnr(table, palette, palette_fitting.assign(table.colors, palette))


def test_large_palettes_are_as_good_as_scikit_learns_kmeans(monkeypatch):
    pixels = _noisy_image()
    table = palette_fitting.color_table(pixels.reshape(-1, 3))
    fast = palette_fitting.fit_kmeans(table, 1024)
    monkeypatch.setattr(palette_fitting, "LARGE_PALETTE", 1 << 20)
    reference = palette_fitting.fit_kmeans(table, 1024)
    assert len(fast) == len(np.unique(fast, axis=0)) > 1000
    assert _psnr(pixels, fast) > _psnr(pixels, reference) - 0.1


def test_a_large_palette_keeps_an_image_with_fewer_colours_exact():
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, (3000, 3), dtype=np.uint8)
    pixels = colours[rng.integers(0, len(colours), (100, 100))]
    decoded = vqformat.decode(vqformat.encode(pixels, 4096))
    assert np.array_equal(decoded, pixels)
