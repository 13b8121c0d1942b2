"""kNN graphs on cosine similarity with faiss: search, files, cache, recall."""
from .cache import cached_knn
from .io import check_knn, knn_path, load_knn, save_knn
from .recall import knn_recall, sampled_recall, streamed_recall
from .search import (AUTO_EXACT_MAX, AUTO_GEMM_MAX, build_index, default_nlist, gpu_available, knn_search, normalize_rows,
                     resolve_method, search_knn, set_num_threads)

__all__ = ["knn_search", "search_knn", "build_index", "default_nlist", "gpu_available", "normalize_rows",
           "set_num_threads", "save_knn", "load_knn", "knn_path", "check_knn", "cached_knn", "knn_recall",
           "sampled_recall", "streamed_recall", "resolve_method", "AUTO_EXACT_MAX",
           "AUTO_GEMM_MAX"]
