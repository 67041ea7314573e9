"""Large images and collections: strip-by-strip encode and decode, row ranges, bounded
memory, the sampled fit, the dataset palette and its file."""

import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vqformat
from vqformat import dataset, pipeline
from vqformat.format import methods as compression
from vqformat.format.writing import STRIP_PIXELS, default_strip_rows
from vqformat.quantizer import palette as palette_fitting
from vqformat.quantizer import streaming


def gradient(height, width, channels=3, noise=6.0, seed=0):
    """Smooth ramps plus noise: many distinct colours, so fitting is not trivial."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ramps = [x / width, y / height, (x + y) / (width + height), 1 - x / width]
    base = np.stack(ramps[:channels], axis=-1) * 255
    base += rng.normal(0, noise, base.shape).astype(np.float32)
    image = np.clip(base, 0, 255).astype(np.uint8)
    return image[..., 0] if channels == 1 else image


def as_memmap(tmp_path, pixels, name="image.npy"):
    path = tmp_path / name
    array = np.lib.format.open_memmap(path, "w+", np.uint8, pixels.shape)
    array[:] = pixels
    array.flush()
    return np.load(path, mmap_mode="r")


@pytest.fixture
def sampled(monkeypatch):
    """Send small images down the large-image path, with bands of a few rows."""
    monkeypatch.setattr(pipeline, "FIT_PIXELS", 2000)
    monkeypatch.setattr(streaming, "BAND_PIXELS", 2000)


class RowsOnly:
    """An array-like that serves row slices only and records the largest one read."""

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.largest_read = 0

    def __getitem__(self, rows):
        assert isinstance(rows, slice)
        part = self._array[rows]
        self.largest_read = max(self.largest_read, len(part))
        return part


def psnr(a, b):
    error = np.mean((a.astype(np.float64) - b) ** 2)
    return 10 * np.log10(255**2 / error)


@pytest.mark.parametrize("channels", [1, 3])  # with alpha, error is as seen: test_alpha
def test_sampled_encode_of_a_memmap_round_trips(tmp_path, sampled, channels):
    pixels = gradient(90, 70, channels)
    source = as_memmap(tmp_path, pixels)
    data = vqformat.encode(source, colors=32, strip_rows=7)
    assert vqformat.read_info(data).strip_rows == 7
    assert vqformat.read_info(data).colors <= 32
    decoded = vqformat.decode(data)
    assert decoded.shape == pixels.shape
    palette, indices = vqformat.decode_indexed(data)
    # Colours with alpha are fitted and mapped as seen (composited over black and white).
    seen = palette_fitting.seen if palette_fitting.has_alpha(channels) else np.float64
    flat, entries = seen(pixels.reshape(-1, palette.shape[1])), seen(palette)
    assert psnr(seen(decoded.reshape(flat.shape)), flat) > 25
    nearest = ((flat[:, None, :] - entries[None]) ** 2).sum(-1).min(1)
    chosen = ((flat - entries[indices.ravel()]) ** 2).sum(-1)
    assert np.allclose(chosen, nearest)  # every pixel maps to a nearest entry


def test_save_to_path_file_object_and_encode_agree(tmp_path, sampled):
    pixels = gradient(64, 50)
    options = dict(colors=20, compression="deflate", strip_rows=5, seed=3)
    data = vqformat.encode(pixels, **options)
    vqformat.save(tmp_path / "a.vqi", as_memmap(tmp_path, pixels), **options)
    buffer = io.BytesIO()
    vqformat.save(buffer, RowsOnly(pixels), **options)
    assert (tmp_path / "a.vqi").read_bytes() == data == buffer.getvalue()
    assert vqformat.encode(pixels, **options) == data  # deterministic


def test_array_likes_are_read_a_band_at_a_time(sampled):
    source = RowsOnly(gradient(120, 40))
    data = vqformat.encode(source, colors=16, strip_rows=10)
    assert vqformat.decode(data).shape == (120, 40, 3)
    assert source.largest_read <= 2000 // 40


def test_rare_colours_survive_the_sampled_path(sampled):
    rng = np.random.default_rng(1)
    palette = rng.choice(256**3, size=30, replace=False)
    palette = ((palette[:, None] >> np.array([16, 8, 0])) & 255).astype(np.uint8)
    indices = rng.integers(0, 29, size=(200, 150))
    indices[123, 77] = 29  # one pixel of the last colour: no sample will hold it
    pixels = palette[indices]
    assert np.array_equal(vqformat.decode(vqformat.encode(pixels, colors=30)), pixels)


def test_a_small_image_is_fitted_on_all_its_pixels_as_quantize_does():
    pixels = gradient(40, 30)
    palette, indices = vqformat.quantize(pixels, 12, seed=2)
    got_palette, got_indices = vqformat.decode_indexed(vqformat.encode(pixels, 12, seed=2))
    assert np.array_equal(got_palette, palette)
    flat = pixels.reshape(-1, 3).astype(np.int64)
    distance = lambda chosen: ((flat - palette[chosen.ravel()]) ** 2).sum(-1)  # noqa: E731
    assert np.array_equal(distance(got_indices), distance(indices))  # nearest, ties aside


@settings(max_examples=60, deadline=None)
@given(
    st.integers(-45, 45) | st.none(),
    st.integers(-45, 45) | st.none(),
    st.integers(1, 9) | st.none(),
    st.integers(1, 40),
    st.sampled_from(sorted(compression.COMPRESSION_METHODS)),
)
def test_row_range_decode_equals_slice_of_full_decode(start, stop, step, strip_rows, method):
    rng = np.random.default_rng(strip_rows)
    palette = rng.integers(0, 256, size=(5, 3), dtype=np.uint8)
    indices = rng.integers(0, 5, size=(40, 9))
    data = vqformat.encode_indexed(palette, indices, compression=method, strip_rows=strip_rows)
    rows = slice(start, stop, step)
    assert np.array_equal(vqformat.decode(data, rows=rows), vqformat.decode(data)[rows])
    assert np.array_equal(vqformat.decode_indexed(data, rows=rows)[1], indices[rows])


def test_row_range_decodes_only_the_strips_it_needs(monkeypatch):
    indices = np.arange(100 * 8).reshape(100, 8) % 7
    palette = np.arange(7, dtype=np.uint8) * 30
    data = vqformat.encode_indexed(palette, indices, strip_rows=10, compression="deflate")
    decoded = []
    original = compression.Deflate.decode

    def counting(self, payload, rows, width, bits):
        decoded.append(payload)
        return original(self, payload, rows, width, bits)

    monkeypatch.setattr(compression.Deflate, "decode", counting)
    band = vqformat.decode(data[: len(data) // 2], rows=slice(25, 38))  # a truncated file
    assert np.array_equal(band, palette[indices[25:38]])
    assert len(decoded) == 2  # strips 2 and 3, none before, nothing read after
    with pytest.raises(vqformat.VQIError):
        vqformat.decode(data[: len(data) // 2])
    with pytest.raises(vqformat.VQIError, match="ends"):
        vqformat.decode(data[:-12], rows=slice(95, 100))  # the last strip: IEND is checked


@pytest.mark.parametrize("rows", [slice(None, None, -1), slice(0, 5, -2)])
def test_row_ranges_must_go_down(rows):
    data = vqformat.encode_indexed(np.zeros((1, 1), np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(vqformat.VQIError, match="step"):
        vqformat.decode(data, rows=rows)


def test_pixel_limit_applies_to_the_rows_decoded():
    data = vqformat.encode_indexed(
        np.zeros((1, 1), np.uint8), np.zeros((100, 10), np.uint8), strip_rows=4
    )
    assert vqformat.decode(data, rows=slice(0, 8), max_pixels=80).shape == (8, 10)
    with pytest.raises(vqformat.VQIError, match="limit"):
        vqformat.decode(data, max_pixels=80)


def traced_peak(function, *args, **kwargs):
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_encode_memory_is_bounded_by_strips_not_the_image(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "FIT_PIXELS", 1 << 14)
    small = as_memmap(tmp_path, gradient(2000, 1000, channels=1), "small.npy")
    large = as_memmap(tmp_path, gradient(8000, 1000, channels=1), "large.npy")
    options = dict(colors=16, strip_rows=16)
    _, small_peak = traced_peak(vqformat.save, tmp_path / "small.vqi", small, **options)
    _, large_peak = traced_peak(vqformat.save, tmp_path / "large.vqi", large, **options)
    assert large_peak < 1.3 * small_peak  # four times the pixels, the same memory
    assert large_peak < large.nbytes / 2


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20_000), st.integers(1, 20_000))
def test_default_strips_leave_no_short_last_strip(width, height):
    """Strips stay within the default size, and the last holds at least half a strip's
    rows: each strip has a fixed cost to decode, which a sliver of rows would not repay."""
    rows = default_strip_rows(width, height)
    strips = -(-height // rows)
    assert 1 <= rows <= height
    assert rows * width <= STRIP_PIXELS or rows == 1
    assert strips == 1 or 2 * (height - (strips - 1) * rows) >= rows


def test_decode_allocates_little_beyond_its_output(tmp_path):
    pixels = gradient(2000, 2000, noise=20)
    path = tmp_path / "a.vqi"
    vqformat.save(path, pixels, palette=np.unique(pixels[::50, ::50].reshape(-1, 3), axis=0)[:200])
    decoded, peak = traced_peak(vqformat.decode, path)
    strip_rows = vqformat.read_info(path).strip_rows
    assert strip_rows < 2000
    # the output, plus the working memory of one strip (a few bytes a pixel)
    assert peak <= decoded.nbytes + 20 * strip_rows * 2000


def test_encode_with_a_given_palette_skips_fitting(monkeypatch):
    pixels = gradient(30, 20)
    palette = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]], np.uint8)
    monkeypatch.setattr(vqformat.quantizer.palette, "fit", None)
    monkeypatch.setattr(vqformat.quantizer.palette, "quantize", None)
    got_palette, indices = vqformat.decode_indexed(vqformat.encode(pixels, palette=palette))
    assert np.array_equal(got_palette, palette)
    distances = ((pixels[:, :, None, :].astype(int) - palette.astype(int)) ** 2).sum(-1)
    assert np.array_equal(
        np.take_along_axis(distances, indices[..., None], -1)[..., 0], distances.min(-1)
    )


def test_a_palette_must_match_the_image_channels():
    with pytest.raises(vqformat.VQIError, match="channels"):
        vqformat.encode(gradient(8, 8), palette=np.zeros((4, 1), np.uint8))


def test_bad_options_are_rejected_before_the_file_is_created(tmp_path):
    with pytest.raises(vqformat.VQIError):
        vqformat.save(tmp_path / "a.vqi", gradient(8, 8), strip_rows=9)
    with pytest.raises(vqformat.VQIError):
        vqformat.save(tmp_path / "a.vqi", gradient(8, 8), compression="lzma")
    assert not (tmp_path / "a.vqi").exists()


def collection(count=5):
    return (gradient(60 + 10 * n, 50, seed=n) for n in range(count))


def test_dataset_palette_is_deterministic_and_round_trips(tmp_path):
    palette = dataset.fit_palette(collection(), colors=24, seed=4, samples_per_image=800)
    again = dataset.fit_palette(collection(), colors=24, seed=4, samples_per_image=800)
    assert np.array_equal(palette, again)
    assert 1 <= len(palette) <= 24 and palette.shape[1] == 3
    dataset.write_palette(tmp_path / "p.vqi", palette)
    buffer = io.BytesIO()
    dataset.write_palette(buffer, palette)
    assert (tmp_path / "p.vqi").read_bytes() == buffer.getvalue()
    assert np.array_equal(dataset.read_palette(tmp_path / "p.vqi"), palette)
    assert vqformat.read_info(buffer.getvalue()).compression == "stored"
    for image in collection():
        stored, _ = vqformat.decode_indexed(vqformat.encode(image, palette=palette))
        assert np.array_equal(stored, palette)
        assert psnr(vqformat.decode(vqformat.encode(image, palette=palette)), image) > 22


def test_dataset_of_few_colours_gets_them_exactly():
    colours = np.array([[0, 0, 0], [10, 200, 30], [255, 255, 255]], np.uint8)
    images = [colours[np.random.default_rng(n).integers(0, 3, (20, 20))] for n in range(3)]
    assert np.array_equal(dataset.fit_palette(images, colors=8), colours)


def test_dataset_images_must_share_channels():
    with pytest.raises(vqformat.VQIError, match="channels"):
        dataset.fit_palette([gradient(10, 10), gradient(10, 10, channels=1)], colors=4)


def test_an_ordinary_image_is_not_a_palette_file():
    data = vqformat.encode_indexed(np.arange(3, dtype=np.uint8), np.array([[0, 2, 1]]))
    with pytest.raises(vqformat.VQIError, match="not a palette file"):
        dataset.read_palette(data)


def test_palette_file_bytes_match_the_spec_example():
    buffer = io.BytesIO()
    dataset.write_palette(buffer, np.array([[0, 0, 0], [255, 0, 0], [255, 255, 255]], np.uint8))
    data = buffer.getvalue()
    assert data[16:36] == bytes.fromhex("01 03 02 00 00000003 00000001 00000003 00000001")
    assert data[48:57] == bytes.fromhex("000000 ff0000 ffffff")
    assert data[61:70] == b"\x00\x00\x00\x01IDAT\x18"  # indices 00 01 10, two zero bits
    assert np.array_equal(dataset.read_palette(data)[1], [255, 0, 0])


@pytest.mark.parametrize("existing", [None, b"the old file"])
def test_a_path_whose_writing_fails_is_left_as_it_was(tmp_path, monkeypatch, existing):
    calls = []

    def failing(self, pixels):
        calls.append(len(pixels))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return np.zeros(len(pixels), np.uint8)

    target = tmp_path / "a.vqi"
    if existing is not None:
        target.write_bytes(existing)
    monkeypatch.setattr(streaming.StripAssigner, "__call__", failing)
    with pytest.raises(OSError, match="No space left"):
        vqformat.save(target, gradient(20, 10), palette=np.zeros((1, 3), np.uint8), strip_rows=5)
    assert len(calls) == 2
    assert sorted(tmp_path.iterdir()) == ([] if existing is None else [target])
    if existing is not None:
        assert target.read_bytes() == existing
