"""Photos to face clusters: dlib face embeddings (``embed``) and the JSON pipeline (``pipeline``).

Needs the ``faces`` extra: ``pip install "clusterg[faces]"`` (dlib-bin,
face_recognition_models, Pillow). Importing this package works without it;
embedding raises :class:`clusterg.ClustergError` with the install hint.
"""
from .embed import EMBEDDING_DIM, FaceEmbedder, FaceRecord, embed_images, face_model_dir, load_image
from .pipeline import (AUTO_THRESHOLDS, DEFAULT_METHODS, IMAGE_K, EmbeddingCache, cluster_faces, cluster_images,
                       default_threshold, export_cluster_folders, read_photo_list)

__all__ = ["embed_images", "FaceEmbedder", "FaceRecord", "face_model_dir", "load_image", "EMBEDDING_DIM",
           "cluster_images", "cluster_faces", "read_photo_list", "default_threshold", "export_cluster_folders",
           "EmbeddingCache", "DEFAULT_METHODS", "IMAGE_K", "AUTO_THRESHOLDS"]
