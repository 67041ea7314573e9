"""The vqi codec for numcodecs and Zarr: real arrays on disk, dask reads, entry points."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")

from vqformat import VQIError, decode  # noqa: E402
from vqformat.dataset import fit_palette  # noqa: E402
from vqformat.zarr_codec import (  # noqa: E402
    VQI,
    VQICodec,
    decode_chunk,
    images_to_zarr,
    read_layout,
    store_psnr,
)


def _frames(count: int = 6, height: int = 24, width: int = 32) -> np.ndarray:
    """Shifted crops of one smooth scene, so a small palette fits them well."""
    y, x = np.mgrid[0 : height + count, 0 : width + count]
    scene = np.stack([x * 6, y * 6, (x + y) * 3], axis=-1).astype(np.uint8)
    return np.stack([scene[i : i + height, i : i + width] for i in range(count)])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize(
    "shape", [(24, 32), (24, 32, 1), (24, 32, 3), (2, 24, 32, 4), (2, 3, 24, 32), (24, 32, 2)]
)
def test_numcodecs_round_trip_keeps_shape_and_stores_vqi_streams(shape):
    rng = np.random.default_rng(1)
    chunk = rng.integers(0, 4, shape, dtype=np.uint8) * 60
    codec = VQI(colors=256)
    data = codec.encode(chunk)
    restored = codec.decode(data)
    assert restored.shape == chunk.shape
    np.testing.assert_array_equal(restored, chunk)  # few colours: kept exactly
    layout, streams = read_layout(data)
    assert layout.shape == shape
    first = decode(bytes(streams[0]))  # each image is a complete .vqi file
    np.testing.assert_array_equal(first, chunk.reshape(-1, *first.shape)[0])


def test_chunk_layout_is_the_documented_one():
    chunk = _frames(2)
    data = VQI(colors=8).encode(chunk)
    assert data[:4] == b"VQIZ"
    assert data[4:7] == bytes([1, 1, 4])
    assert struct.unpack_from("<4I", data, 7) == chunk.shape
    (length,) = struct.unpack_from("<I", data, 23)
    assert decode(data[27 : 27 + length]).shape == chunk.shape[1:]


def test_channels_zero_reads_a_narrow_last_axis_as_width():
    chunk = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    codec = VQI(colors=64, channels=0)
    data = codec.encode(chunk)
    assert len(read_layout(data)[1]) == 2  # two grey 5x3 images, not one RGB image
    np.testing.assert_array_equal(codec.decode(data), chunk)


def test_decode_into_out():
    chunk = _frames(2)
    out = np.empty_like(chunk)
    codec = VQI(colors=256)
    assert codec.decode(codec.encode(chunk), out=out) is out
    assert _psnr(out, chunk) > 30


def test_config_round_trips_through_json_and_get_codec():
    palette = fit_palette(_frames(), 16)
    codec = VQI(colors=16, compression="stored", method="kmeans", seed=3, palette=palette)
    config = json.loads(json.dumps(codec.get_config()))
    assert config["palette"] == palette.tolist()
    again = numcodecs.get_codec(config)
    assert isinstance(again, VQI)
    assert again.get_config() == codec.get_config()
    chunk = _frames(2)
    assert again.encode(chunk) == codec.encode(chunk)


@pytest.mark.parametrize(
    "config",
    [
        {"colors": 0},
        {"colors": 70000},
        {"compression": "zip"},
        {"method": "magic"},
        {"min_psnr": -1},
        {"seed": -1},
        {"dither": "yes"},
        {"palette": [[300, 0, 0]]},
        {"palette": [[0.5, 0, 0]]},
        {"channels": 5},
        {"quality": 90},
    ],
)
def test_bad_config_is_a_vqi_error(config):
    with pytest.raises(VQIError):
        VQI(**config)
    with pytest.raises(VQIError):
        VQICodec(**config)


@pytest.mark.parametrize(
    ("chunk", "channels"),
    [
        (np.zeros((4, 4), np.uint16), None),
        (np.zeros((4, 4), np.float32), None),
        (np.zeros(16, np.uint8), None),
        (np.zeros((0, 4, 4), np.uint8), None),
        (np.zeros((4, 4, 3), np.uint8), 4),
        (np.zeros((4, 3), np.uint8), 3),
    ],
)
def test_bad_chunk_is_a_vqi_error(chunk, channels):
    with pytest.raises(VQIError):
        VQI(channels=channels).encode(chunk)


def test_corrupt_chunks_are_vqi_errors():
    data = VQI(colors=8).encode(_frames(3))
    (length,) = struct.unpack_from("<I", data, 23)
    bad = [
        b"",
        b"PNG!" + data[4:],
        data[:10],
        data[:-1],
        data + b"x",
        data[:4] + b"\x02" + data[5:],  # unknown version
        data[:7] + struct.pack("<4I", 4, 24, 32, 3) + data[23:],  # claims a fourth image
        data[:7] + struct.pack("<4I", 3, 25, 32, 3) + data[23:],  # images are not 25 high
        data[:7] + struct.pack("<4I", 3, 24, 32, 4) + data[23:],  # nor RGBA
        data[:7] + struct.pack("<4I", 3, 2**31, 2**31, 3) + data[23:],
        data[:27] + bytes([data[27] ^ 0xFF]) + data[28:],  # broken .vqi signature
        data[: 27 + length // 2] + bytes(length - length // 2) + data[27 + length :],
    ]
    for chunk in bad:
        with pytest.raises(VQIError):
            decode_chunk(chunk)
    with pytest.raises(VQIError, match="expected"):
        decode_chunk(data, (3, 24, 32, 4))


def test_v2_array_on_disk(tmp_path):
    frames = _frames()
    images_to_zarr(frames, tmp_path / "v2.zarr", zarr_format=2, colors=32)
    array = zarr.open_array(tmp_path / "v2.zarr", mode="r")
    assert array.metadata.zarr_format == 2
    stored = json.loads((tmp_path / "v2.zarr" / ".zarray").read_text())
    assert stored["compressor"]["id"] == "vqi"
    assert stored["compressor"]["colors"] == 32
    assert array.shape == frames.shape
    assert store_psnr(array, frames) == pytest.approx(_psnr(array[...], frames))
    assert store_psnr(array, frames) > 30


def test_v3_array_with_a_shared_palette(tmp_path):
    frames = _frames()
    palette = fit_palette(frames, 16)
    array = zarr.create_array(
        tmp_path / "v3.zarr",
        shape=frames.shape,
        chunks=(2, 16, 16, 3),  # edge chunks are padded by zarr
        dtype="uint8",
        serializer=VQICodec(palette=palette),
        compressors=None,
    )
    array[...] = frames
    metadata = json.loads((tmp_path / "v3.zarr" / "zarr.json").read_text())
    (codec,) = metadata["codecs"]
    assert codec["name"] == "vqi"
    assert codec["configuration"]["palette"] == palette.tolist()
    again = zarr.open_array(tmp_path / "v3.zarr", mode="r")
    restored = again[...]
    assert restored.shape == frames.shape
    assert _psnr(restored, frames) > 25
    colours = {tuple(c) for c in restored.reshape(-1, 3)}
    assert colours <= {tuple(c) for c in palette}  # one palette for every chunk
    assert store_psnr(again, frames) == pytest.approx(_psnr(restored, frames))


def test_v3_rejects_other_dtypes(tmp_path):
    with pytest.raises(VQIError, match="uint8"):
        zarr.create_array(
            tmp_path / "bad.zarr",
            shape=(4, 4),
            dtype="uint16",
            serializer=VQICodec(),
            compressors=None,
        )


def test_corrupt_chunk_file_is_a_vqi_error(tmp_path):
    images_to_zarr(_frames(2), tmp_path / "a.zarr", colors=8)
    chunk_file = tmp_path / "a.zarr" / "c" / "1" / "0" / "0" / "0"
    chunk_file.write_bytes(chunk_file.read_bytes()[:-5])
    array = zarr.open_array(tmp_path / "a.zarr", mode="r")
    array[0]
    with pytest.raises(VQIError):
        array[1]


def test_images_to_zarr_reads_paths(tmp_path):
    from PIL import Image

    frames = _frames(3)
    paths = []
    for number, frame in enumerate(frames):
        paths.append(tmp_path / f"{number}.png")
        Image.fromarray(frame).save(paths[-1])
    array = images_to_zarr(paths, tmp_path / "p.zarr", colors=64)
    assert array.chunks == (1, *frames.shape[1:])
    assert store_psnr(array, frames) > 30


def test_dask_local_cluster_reads_in_parallel(tmp_path):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    frames = _frames(8)
    images_to_zarr(frames, tmp_path / "d.zarr", colors=32)
    expected = zarr.open_array(tmp_path / "d.zarr", mode="r")[...]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        lazy = da.from_zarr(str(tmp_path / "d.zarr"))
        assert lazy.numblocks[0] == 8
        result = client.compute(lazy.mean(axis=(1, 2, 3))).result()
        np.testing.assert_allclose(result, expected.mean(axis=(1, 2, 3)))
        np.testing.assert_array_equal(lazy[3:5].compute(), expected[3:5])


def _run_without_vqformat(decoding: str) -> str:
    """Run ``decoding`` in a fresh interpreter, checking vqformat is not imported first."""
    script = "import sys, numcodecs, zarr\nassert 'vqformat' not in sys.modules\n" + decoding
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_entry_points_decode_without_importing_vqformat(tmp_path):
    from importlib.metadata import entry_points

    for group in ("numcodecs.codecs", "zarr.codecs"):
        if not entry_points(group=group, name="vqi"):
            pytest.skip("vqformat's entry points are not installed")
    frames = _frames(2)
    data = VQI(colors=32).encode(frames)
    (tmp_path / "chunk.bin").write_bytes(data)
    decoded = VQI().decode(data)
    printed = _run_without_vqformat(
        f"codec = numcodecs.get_codec({{'id': 'vqi', 'colors': 32}})\n"
        f"chunk = codec.decode(open({str(tmp_path / 'chunk.bin')!r}, 'rb').read())\n"
        "print(type(codec).__name__, chunk.shape, int(chunk.sum()))"
    )
    assert printed == f"VQI {decoded.shape} {int(decoded.sum())}"
    for zarr_format in (2, 3):
        path = tmp_path / f"e{zarr_format}.zarr"
        stored = images_to_zarr(frames, path, zarr_format=zarr_format, colors=32)[...]
        printed = _run_without_vqformat(
            f"array = zarr.open_array({str(path)!r}, mode='r')[...]\n"
            "print(array.shape, int(array.sum()))"
        )
        assert printed == f"{stored.shape} {int(stored.sum())}"


def test_import_vqformat_leaves_zarr_and_numcodecs_unimported():
    script = (
        "import sys, vqformat\n"
        "print(sorted({'zarr', 'numcodecs', 'vqformat.zarr_codec'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@settings(max_examples=25, deadline=None)
@given(
    leading=st.lists(st.integers(1, 3), max_size=2),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    channels=st.sampled_from([0, 1, 2, 3, 4]),
    seed=st.integers(0, 2**16),
)
def test_chunks_of_few_colours_round_trip_exactly(leading, height, width, channels, seed):
    shape = (*leading, height, width) + ((channels,) if channels else ())
    levels = np.random.default_rng(seed).integers(0, 4, shape, dtype=np.uint8)
    chunk = levels * np.uint8(85)  # at most 4**C colours per image, within k = 256
    codec = VQI(colors=256, channels=channels)
    np.testing.assert_array_equal(codec.decode(codec.encode(chunk)), chunk)
