"""The Dask path gives the same bytes as encoding locally (a LocalCluster stands in)."""

import functools
import sys

import numpy as np
import pytest

import vqformat
from vqformat import dataset
from vqformat.cli import distributed

pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def address():
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


def images(count=4):
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (20 + n, 30, 3), dtype=np.uint8) for n in range(count)]


def test_batch_encode_gives_the_local_bytes(address):
    options = dict(colors=12, compression="deflate", seed=5)
    remote = distributed.encode_batch(images(), address=address, **options)
    assert remote == [vqformat.encode(image, **options) for image in images()]


def test_batch_encode_with_a_dataset_palette(address):
    palette = dataset.fit_palette(images(), colors=10, samples_per_image=200)
    remote = distributed.encode_batch(images(), address=address, palette=palette)
    assert remote == [vqformat.encode(image, palette=palette) for image in images()]
    for data in remote:
        assert np.array_equal(vqformat.decode_indexed(data)[0], palette)


def test_jobs_writing_files_run_on_the_cluster(address, tmp_path):
    paths = [tmp_path / f"{n}.vqi" for n in range(3)]
    job = functools.partial(save_to, colors=6)
    distributed.map_on_cluster(job, list(zip(paths, images(3), strict=True)), address=address)
    for path, image in zip(paths, images(3), strict=True):
        assert path.read_bytes() == vqformat.encode(image, colors=6)


def save_to(job, **options):
    path, pixels = job
    vqformat.save(path, pixels, **options)


def test_a_failing_job_raises_its_error(address):
    with pytest.raises(vqformat.VQIError, match="uint8"):
        distributed.encode_batch([np.zeros((4, 4), np.float32)], address=address)


def test_a_clear_error_without_dask(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r"vqformat\[dask\]"):
        distributed.encode_batch(images(1), address="tcp://127.0.0.1:1")


def test_the_cluster_mapper_yields_results_in_order(address):
    with distributed.cluster_mapper(address) as mapper:
        results = mapper(vqformat.encode, images())
        assert next(results) == vqformat.encode(images()[0])
        assert list(results) == [vqformat.encode(image) for image in images()[1:]]


def test_cli_encode_on_a_cluster_writes_the_local_bytes(tmp_path):
    from dask.distributed import LocalCluster
    from PIL import Image

    from vqformat.cli import main

    inputs = []
    for number, image in enumerate(images(3)):
        inputs.append(str(tmp_path / f"{number}.png"))
        Image.fromarray(image).save(inputs[-1])
    with LocalCluster(
        n_workers=1, processes=False, protocol="tcp", dashboard_address=":0"
    ) as cluster:
        remote = ["encode", "-q", "-k", "8", "--dask", cluster.scheduler_address]
        assert main([*remote, *inputs, "-o", f"{tmp_path}/remote/"]) == 0
    assert main(["encode", "-q", "-k", "8", *inputs, "-o", f"{tmp_path}/local/"]) == 0
    for number in range(3):
        local = (tmp_path / "local" / f"{number}.vqi").read_bytes()
        assert (tmp_path / "remote" / f"{number}.vqi").read_bytes() == local
