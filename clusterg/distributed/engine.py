"""The Ray engine: connect to a cluster (or start a local one), fail fast when it is unreachable, cut shards.

``ray`` is imported inside :func:`get_engine` only, so importing this module costs nothing.

Addresses: ``None`` uses the Ray session of this process if there is one, else starts a local head node
(``ray.init()``: one machine, several worker processes); ``"auto"`` joins the cluster Ray finds on this machine;
``"HOST:PORT"`` (a head node's GCS port, 6379 by default) or ``"ray://HOST:PORT"`` (Ray Client, 10001) joins that
cluster. A ``HOST:PORT`` that does not accept a TCP connection within ``connect_timeout`` seconds (default 3) is
refused with a :class:`~clusterg.ClustergError` before Ray is asked, so a wrong ``--address`` fails in seconds,
not after Ray's own minute of retries.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import numpy as np

from .._validate import ClustergError

logger = logging.getLogger("clusterg.distributed")

__all__ = ["RayEngine", "get_engine", "shard_bounds", "require_ray", "check_engine"]

#: Ray retries an actor's task on a restarted actor this many times (a killed worker process)
MAX_RETRIES = 3


def require_ray():
    """The ``ray`` module, or a ClustergError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ClustergError('engine="ray" needs Ray: pip install "clusterg[ray]"') from None
    return ray


def check_engine(engine) -> str:
    """``"local"`` (None too) or ``"ray"``; anything else is a ClustergError."""
    if engine is None:
        return "local"
    if not isinstance(engine, str) or engine.strip().lower() not in ("local", "ray"):
        raise ClustergError(f"engine: expected 'local' or 'ray', got {engine!r}")
    return engine.strip().lower()


def _probe(address: str, timeout: float) -> None:
    """Refuse ``[ray://]HOST:PORT`` unless a TCP connection to it opens within ``timeout`` seconds."""
    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not (0 < int(port) < 65536):
        raise ClustergError(f"address: expected 'HOST:PORT', 'ray://HOST:PORT' or 'auto', got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ClustergError(f"cannot reach a Ray cluster at {address} within {timeout:g} s "
                            f"({type(e).__name__}: {e}); start one with `ray start --head` and pass its address, "
                            f"or omit --address to run a local Ray on this machine") from None


def shard_bounds(n: int, shards: int, align: int | None = None) -> list[tuple[int, int]]:
    """``shards`` contiguous row ranges ``[lo, hi)`` covering ``0..n`` (sizes differ by at most one).

    With ``align``, boundaries are rounded to multiples of ``align`` (empty ranges dropped), so that each
    shard is a union of whole ``align``-row batches when ``n`` spans several.
    """
    if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
        raise ClustergError(f"shards must be a positive integer, got {shards!r}")
    shards = int(min(shards, max(n, 1)))
    edges = np.linspace(0, n, shards + 1).round().astype(np.int64)
    if align is not None and n > int(align):
        edges = np.unique(np.minimum((np.round(edges / int(align)) * int(align)).astype(np.int64), n))
        edges[0], edges[-1] = 0, n
        edges = np.unique(edges)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(len(edges) - 1)]


@dataclass
class RayEngine:
    """A connected Ray session and the number of shards to cut the data into.

    Attributes:
        address: what was asked for (None: local).
        shards: row shards of every stage (default: the cluster's CPU count).
        threads: faiss / torch threads a shard's worker uses (the cluster's CPUs / shards, at least 1).
    """

    address: str | None
    shards: int
    threads: int

    @property
    def ray(self):
        import ray
        return ray


def get_engine(address: str | None = None, shards: int | None = None, connect_timeout: float = 3.0,
               num_cpus: int | None = None) -> RayEngine:
    """Connect to Ray (see the module text for ``address``) and return a :class:`RayEngine`.

    Args:
        address: None, ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"``.
        shards: row shards (default: the CPUs Ray reports); >= 1.
        connect_timeout: seconds the TCP probe of ``HOST:PORT`` may take (default 3).
        num_cpus: CPUs of a local head node started here (default: Ray's, all of this machine's).
    """
    if shards is not None and (isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1):
        raise ClustergError(f"shards must be a positive integer, got {shards!r}")
    if address is not None:
        if not isinstance(address, str) or not address.strip():
            raise ClustergError(f"address: expected a string such as 'HOST:6379', got {address!r}")
        address = address.strip()
        if address != "auto":
            _probe(address, float(connect_timeout))
    ray = require_ray()
    if not ray.is_initialized():
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address is None:
            if num_cpus is not None:
                kwargs["num_cpus"] = int(num_cpus)
            logger.info("starting a local Ray head node")
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ClustergError(f"could not connect to Ray at {address or 'a local head node'}: "
                                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
    s = int(shards) if shards is not None else cpus
    threads = max(1, cpus // s)
    logger.info("Ray engine: %d shards, %d thread(s) each, %d CPUs in the cluster", s, threads, cpus)
    return RayEngine(address=address, shards=s, threads=threads)


def env_threads(threads: int, torch_too: bool = False) -> None:
    """Set the faiss (and with ``torch_too`` torch) threads of the current (worker) process."""
    import faiss
    faiss.omp_set_num_threads(int(threads))
    if torch_too:
        import torch
        torch.set_num_threads(int(threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(int(threads)))
