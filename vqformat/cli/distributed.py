"""Run a batch of encodes on a Dask cluster: the same jobs, the same bytes, more machines.

Scheduling, data transfer and failure handling belong to ``dask.distributed``; this
module only maps a job over items on a cluster whose address the user gives, through
the same ``mapper(job, items)`` shape as the builtin ``map`` or ``Executor.map``, so a
batch runner can take either. Install with the ``dask`` extra
(``pip install 'vqformat[dask]'``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..pipeline import encode
from .batch import Mapper

Item = TypeVar("Item")
Result = TypeVar("Result")


def _client_class() -> type:
    try:
        from dask.distributed import Client
    except ImportError:
        raise ModuleNotFoundError(
            "running on a Dask cluster needs dask.distributed: pip install 'vqformat[dask]'"
        ) from None
    return Client


@contextmanager
def cluster_mapper(address: str) -> Iterator[Mapper]:
    """A ``map``-like callable, ``mapper(job, items)``, that runs on the cluster at ``address``.

    Results come in the order of ``items``, each as soon as it and those before it
    are done (so a caller can report progress); a failing job raises its exception.
    ``job`` must be picklable (a module-level function or a ``functools.partial`` of
    one) and importable on the workers. The connection closes when the block ends.
    """
    client_class = _client_class()
    try:
        client = client_class(address, set_as_default=False)
    except OSError as error:  # includes timeouts
        raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    with client:

        def mapper(job: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[Result]:
            for future in client.map(job, list(items), pure=False):
                yield future.result()

        yield mapper


def map_on_cluster(
    job: Callable[[Item], Result], items: Iterable[Item], *, address: str
) -> list[Result]:
    """``[job(item) for item in items]`` computed on the Dask scheduler at ``address``."""
    with cluster_mapper(address) as mapper:
        return list(mapper(job, items))


def encode_batch(images: Iterable[Any], *, address: str, **options: Any) -> list[bytes]:
    """``encode(image, **options)`` for each image, on the cluster: same bytes as locally.

    Pass ``palette=`` (for example from ``dataset.fit_palette``) to give every image of
    a collection the same colours.
    """
    return map_on_cluster(functools.partial(encode, **options), images, address=address)
