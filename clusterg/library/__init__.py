"""Face libraries that live on: a persistent clustering state, incremental assignment, corrections, confidence.

:class:`ClusterState` keeps a batch clustering with its embeddings and index on
disk; new faces join it without re-clustering (:meth:`ClusterState.add`), the
user's corrections (merge, split, not-this-person, name) are stored and kept,
faces of one photo stay apart, and every face gets a ``confidence``.
"""
from .confidence import cluster_quality, face_confidence, labelling_errors
from .state import (HNSW_FROM, JOINT_MAX, REBUILD_FROM, STATE_FORMAT, STATE_VERSION, AddResult, ClusterState,
                    fit_edge_threshold)

__all__ = ["ClusterState", "AddResult", "face_confidence", "cluster_quality", "labelling_errors",
           "fit_edge_threshold", "STATE_FORMAT", "STATE_VERSION", "HNSW_FROM", "REBUILD_FROM", "JOINT_MAX"]
