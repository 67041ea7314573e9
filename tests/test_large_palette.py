"""k-means for large palettes: seeds by merging pairs (or per coarse cluster), k-d tree
Lloyd, and the progress a long encode reports, down to the bar on a terminal."""

import fcntl
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from test_cli import COMMAND

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


@pytest.mark.parametrize("merging", [True, False])
def test_large_palettes_are_as_good_as_the_ordinary_kmeans(monkeypatch, merging):
    pixels = _noisy_image()
    table = palette_fitting.color_table(pixels.reshape(-1, 3))
    assert (len(table.colors) <= large.MERGE_RATIO * 1024) is True
    if not merging:  # seeds by k-means++ per coarse cluster instead
        monkeypatch.setattr(large, "MERGE_RATIO", 0)
    fast = palette_fitting.fit_kmeans(table, 1024)
    monkeypatch.setattr(palette_fitting, "LARGE_PALETTE", 1 << 20)
    reference = palette_fitting.fit_kmeans(table, 1024)
    assert len(fast) == len(np.unique(fast, axis=0)) > 1000
    assert _psnr(pixels, fast) > _psnr(pixels, reference) - 0.1


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 200))
def test_one_merge_joins_the_cheapest_pair_at_its_weighted_mean(seed, count):
    """Merging n points to n - 1 keeps all but two, which become their weighted mean:
    the pair of least Ward cost (checked against every pair)."""
    rng = np.random.default_rng(seed)
    points = np.unique(rng.integers(0, 256, (count, 3)), axis=0).astype(np.float64)
    weights = rng.integers(1, 50, len(points)).astype(np.float64)
    means = large.merge_pairs(points, weights, len(points) - 1)
    kept = (means[:, None, :] == points[None]).all(axis=2).any(axis=0)
    assert np.count_nonzero(~kept) == 2
    first, second = np.flatnonzero(~kept)
    joined = (points[first] * weights[first] + points[second] * weights[second]) / (
        weights[first] + weights[second]
    )
    assert np.allclose(means[~(means[:, None, :] == points[None]).all(axis=2).any(axis=1)], joined)
    mass = weights[:, None] * weights[None] / (weights[:, None] + weights[None])
    cost = mass * ((points[:, None] - points[None]) ** 2).sum(axis=2)
    np.fill_diagonal(cost, np.inf)
    assert cost[first, second] <= cost.min() * (1 + 1e-9)


def test_merging_never_joins_far_clusters_before_near_ones():
    """Two tight groups far apart and k = 2: each group becomes one cluster."""
    rng = np.random.default_rng(3)
    near = rng.normal(0, 1, (200, 3))
    points = np.vstack([near + 50, near + 200])
    means = large.merge_pairs(points, np.ones(len(points)), 2)
    assert np.allclose(np.sort(means[:, 0]), [50 + near[:, 0].mean(), 200 + near[:, 0].mean()])


def test_a_large_palette_keeps_an_image_with_fewer_colours_exact():
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, (3000, 3), dtype=np.uint8)
    pixels = colours[rng.integers(0, len(colours), (100, 100))]
    decoded = vqformat.decode(vqformat.encode(pixels, 4096))
    assert np.array_equal(decoded, pixels)


def test_a_large_palette_reports_progress_and_a_quick_encode_does_not():
    pixels = _noisy_image()
    reports: list[tuple[str, float]] = []
    vqformat.encode(pixels, 1024, progress=lambda stage, done: reports.append((stage, done)))
    fractions = [done for _, done in reports]
    assert reports and all(0 <= done <= 1 for done in fractions)
    assert max(fractions) >= 0.8
    quick: list[tuple[str, float]] = []
    vqformat.encode(pixels, 16, progress=lambda stage, done: quick.append((stage, done)))
    assert quick == []


def _run_on_terminal(*args: str | Path) -> tuple[int, bytes]:
    """Run the console script with stderr on a pseudo-terminal of 80 columns (tqdm
    draws nothing on a terminal of no width); returns its status and what it printed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [*COMMAND, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    printed = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        printed += chunk
    os.close(leader)
    return process.wait(timeout=120), printed


@pytest.fixture
def noisy_png(tmp_path: Path) -> Path:
    path = tmp_path / "noisy.png"
    Image.fromarray(_noisy_image()).save(path)
    return path


def test_a_long_encode_shows_a_progress_bar_on_a_terminal(noisy_png, tmp_path):
    status, printed = _run_on_terminal("encode", "-k", "1024", noisy_png, "-o", tmp_path / "o.vqi")
    assert status == 0
    assert b"fitting the palette" in printed and b"%|" in printed
    last_line = printed.replace(b"\r\n", b"\n").rstrip().split(b"\n")[-1]
    assert last_line.rsplit(b"\r", 1)[-1].startswith(str(noisy_png).encode())


def test_a_quick_encode_on_a_terminal_shows_no_bar(noisy_png, tmp_path):
    status, printed = _run_on_terminal("encode", "-k", "16", noisy_png, "-o", tmp_path / "o.vqi")
    assert status == 0
    assert b"%|" not in printed


def test_no_progress_bar_without_a_terminal(noisy_png, tmp_path):
    result = subprocess.run(
        [*COMMAND, "encode", "-k", "1024", str(noisy_png), "-o", str(tmp_path / "o.vqi")],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert result.stderr.decode().splitlines() == [
        line for line in result.stderr.decode().splitlines() if " -> " in line
    ]
    assert len(result.stderr.decode().splitlines()) == 1
