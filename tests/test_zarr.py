"""vqi chunks in real Zarr arrays (v2 through numcodecs, v3), read by Dask and by entry points."""

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vqformat

zarr = pytest.importorskip("zarr", minversion="3.1")
numcodecs = pytest.importorskip("numcodecs")
zarr_codec = pytest.importorskip("vqformat.zarr_codec")


def exact_stack(count=4, height=24, width=32):
    """Images of 8 colours, so a 16-colour codec must give them back exactly."""
    rng = np.random.default_rng(3)
    return (rng.integers(0, 2, (count, height, width, 3)) * 255).astype(np.uint8)


def photo_stack(count=4):
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (40, 40, 3)).astype(np.uint8)
    return np.stack([np.roll(base, shift, axis=1) for shift in range(count)])


def v3_array(path, data, chunk=2, **options):
    array = zarr.create_array(
        path,
        shape=data.shape,
        chunks=(chunk, *data.shape[1:]),
        dtype="uint8",
        serializer=zarr_codec.VQICodec(**options),
        compressors=None,
    )
    array[:] = data
    return array


def test_v3_array_round_trips_exact_colours(tmp_path):
    data = exact_stack()
    v3_array(tmp_path / "a.zarr", data, colors=16)
    assert np.array_equal(zarr.open_array(tmp_path / "a.zarr")[:], data)


def test_v2_array_through_numcodecs(tmp_path):
    data = exact_stack()
    array = zarr.create_array(
        tmp_path / "a.zarr",
        shape=data.shape,
        chunks=(3, *data.shape[1:]),
        dtype="uint8",
        compressors=zarr_codec.VQI(colors=16),
        filters=None,
        zarr_format=2,
    )
    array[:] = data
    assert np.array_equal(zarr.open_array(tmp_path / "a.zarr")[:], data)
    meta = json.loads((tmp_path / "a.zarr" / ".zarray").read_text())
    assert meta["compressor"]["id"] == "vqi"


def test_each_image_is_a_plain_vqi_stream():
    data = exact_stack(3)
    chunk = zarr_codec.VQI(colors=16).encode(data)
    _, axes, streams = zarr_codec._parse_frame(chunk)
    assert axes == 3 and len(streams) == 3
    for image, stream in zip(data, streams, strict=True):
        assert np.array_equal(vqformat.decode(bytes(stream)), image)


@pytest.mark.parametrize("shape", [(24, 32), (24, 32, 1), (2, 3, 24, 32, 4), (5, 24, 32)])
def test_decoding_gives_the_chunk_shape(shape):
    data = np.zeros(shape, np.uint8)
    data[..., :10, :] = 200
    assert np.array_equal(zarr_codec.VQI(colors=4).decode(zarr_codec.VQI().encode(data)), data)


def test_lossy_psnr_is_reported(tmp_path):
    data = photo_stack()
    array = v3_array(tmp_path / "a.zarr", data, colors=16)
    psnr = zarr_codec.store_psnr(array, data)
    assert 15 < psnr < 40
    assert zarr_codec.store_psnr(
        v3_array(tmp_path / "b.zarr", exact_stack(), colors=16), exact_stack()
    ) == float("inf")


def test_shared_palette_is_in_the_metadata_and_every_chunk(tmp_path):
    data = photo_stack()
    palette = vqformat.dataset.fit_palette(data, colors=8)
    v3_array(tmp_path / "a.zarr", data, chunk=1, palette=palette)
    meta = json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())
    (codec,) = meta["codecs"]
    assert codec["name"] == "vqi" and codec["configuration"]["palette"] == palette.tolist()
    for chunk in sorted((tmp_path / "a.zarr" / "c").rglob("*")):
        if chunk.is_file():
            for stream in zarr_codec._parse_frame(chunk.read_bytes())[2]:
                assert np.array_equal(vqformat.decode_indexed(bytes(stream))[0], palette)


def test_config_round_trips_through_json():
    palette = np.array([[0, 0, 0], [255, 128, 1]], np.uint8)
    codec = zarr_codec.VQI(colors=8, seed=3, min_psnr=30.0, compression="deflate", palette=palette)
    config = json.loads(json.dumps(codec.get_config()))
    assert numcodecs.get_codec(config) == codec
    v3 = zarr_codec.VQICodec(colors=8, dither=True)
    assert zarr_codec.VQICodec.from_dict(json.loads(json.dumps(v3.to_dict()))) == v3


@pytest.mark.parametrize(
    "options", [{"colors": 0}, {"method": "nope"}, {"compression": "zip"}, {"palette": [[300]]}]
)
def test_bad_options_are_refused(options):
    with pytest.raises(vqformat.VQIError):
        zarr_codec.VQI(**options)


def test_bad_chunks_raise_vqi_error():
    codec = zarr_codec.VQI(colors=4)
    with pytest.raises(vqformat.VQIError, match="uint8"):
        codec.encode(np.zeros((4, 4), np.uint16))
    with pytest.raises(vqformat.VQIError, match="H, W"):
        codec.encode(np.zeros(16, np.uint8))
    good = codec.encode(exact_stack(2))
    damaged = bytearray(good)
    damaged[-20] ^= 0xFF
    for bad in (good[:-1], good + b"x", b"PNG\x00" + good[4:], bytes(damaged), b""):
        with pytest.raises(vqformat.VQIError):
            codec.decode(bad)


def test_v3_refuses_other_dtypes(tmp_path):
    with pytest.raises(vqformat.VQIError, match="uint8"):
        zarr.create_array(
            tmp_path / "a.zarr",
            shape=(4, 4),
            dtype="uint16",
            serializer=zarr_codec.VQICodec(),
            compressors=None,
        )


def test_images_to_zarr_and_dask_cluster(tmp_path):
    from dask.distributed import Client, LocalCluster

    da = pytest.importorskip("dask.array")
    from PIL import Image

    data = exact_stack(6)
    paths = [tmp_path / f"{n}.png" for n in range(len(data))]
    for path, image in zip(paths, data, strict=True):
        Image.fromarray(image).save(path)
    zarr_codec.images_to_zarr(
        paths, tmp_path / "a.zarr", images_per_chunk=2, palette="shared", colors=16
    )
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        stack = da.from_zarr(str(tmp_path / "a.zarr"))
        assert stack.chunks[0] == (2, 2, 2)
        assert np.array_equal(stack.compute(), data)


def test_entry_points_work_without_importing_vqformat(tmp_path):
    names = {e.name for e in importlib.metadata.entry_points(group="zarr.codecs")}
    if "vqi" not in names:
        message = "vqformat's entry points are not installed (pip install -e .)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data = exact_stack()
    v3_array(tmp_path / "v3.zarr", data, colors=16)
    np.save(tmp_path / "data.npy", data)
    script = textwrap.dedent(
        f"""
        import sys
        import numcodecs, numpy as np, zarr
        assert "vqformat" not in sys.modules, "vqformat was imported before decoding"
        codec = numcodecs.get_codec({{"id": "vqi", "colors": 16}})
        array = zarr.open_array({str(tmp_path / "v3.zarr")!r})
        data = np.load({str(tmp_path / "data.npy")!r})
        assert np.array_equal(array[:], data)
        assert np.array_equal(codec.decode(codec.encode(data)), data)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_importing_vqformat_imports_neither_zarr_nor_numcodecs():
    script = "import sys, vqformat; print(sorted({'zarr', 'numcodecs'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
