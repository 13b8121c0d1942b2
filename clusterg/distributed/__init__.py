"""Run clusterg's pipeline on Ray (optional extra: ``pip install "clusterg[ray]"``).

Nothing here imports ``ray`` until a function is called: ``import clusterg`` and every single-node
path stay free of it. The pieces, one concept a module:

* :mod:`~clusterg.distributed.engine`: connecting to (or starting) a Ray cluster, failing fast on an
  unreachable address, cutting ``N`` rows into shards;
* :mod:`~clusterg.distributed.knn`: sharded kNN, index shards held by Ray actors, every query shard
  against every index shard, top-k merged with ties broken by id exactly as
  :func:`clusterg.knn.knn_search` does (flat search gives identical results);
* :mod:`~clusterg.distributed.gcn_v`: GCN-V confidences per node shard, the 1-hop halo gathered
  from the kNN lists (equal to the single-node computation);
* :mod:`~clusterg.distributed.linkage`: per-shard edges above a threshold, reduced to a spanning
  forest per shard and merged by one global connected-components pass.

Select it with ``engine="ray"`` (plus ``address``, ``shards``) on the estimators that support it
(``knn-cc``, ``gcn-v``, ``ada-nets``, ``auto``) or ``--engine ray`` on ``clusterg cluster``.
"""
from __future__ import annotations

# the submodules import ray only inside their functions, so importing them here is free of it
from .engine import RayEngine, get_engine
from .gcn_v import ray_gcn_v_confidence
from .knn import ray_knn_search
from .linkage import ray_parent_components, ray_threshold_components

__all__ = ["RayEngine", "get_engine", "ray_knn_search", "ray_gcn_v_confidence", "ray_threshold_components",
           "ray_parent_components"]
