"""How RAG texts become vectors: through a LiteLLM embedding route (integrations/litellm/client.embed), or
with a local scikit-learn TF-IDF vectoriser fitted on the chunks. The choice is written beside the
vectors (`embedder.json`) so that queries are embedded the same way; a TF-IDF vectoriser is saved as JSON
(vocabulary and idf weights), never pickled, so loading an index runs no code from it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlops_nocode.integrations.litellm.client import Usage, embed, preload
from mlops_nocode.integrations.litellm.routes import get_route

EMBEDDER_FILE = "embedder.json"
VECTORISER_FILE = "vectoriser.json"
TFIDF_MAX_FEATURES = 4096


class Embedder(Protocol):
    """Turns texts into unit vectors (one row per text)."""

    def describe(self) -> dict[str, Any]:
        """What `embedder.json` records (method, route, dims)."""
        ...

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dims), rows of norm 1 (or 0 for a text with no signal)."""
        ...

    def save(self, folder: Path) -> None:
        """Write what a later `load_embedder(folder)` needs."""
        ...


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0))


class TfidfEmbedder:
    """A local TF-IDF vectoriser (scikit-learn), fitted on the corpus."""

    def __init__(self, vectoriser: Any) -> None:
        self.vectoriser = vectoriser

    @classmethod
    def fit(cls, texts: Sequence[str]) -> TfidfEmbedder:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(
            sublinear_tf=True, stop_words="english", max_features=TFIDF_MAX_FEATURES, ngram_range=(1, 2)
        )
        vec.fit(list(texts))
        return cls(vec)

    @classmethod
    def load(cls, folder: Path) -> TfidfEmbedder:
        from sklearn.feature_extraction.text import TfidfVectorizer

        data = json.loads((folder / VECTORISER_FILE).read_text(encoding="utf-8"))
        vocabulary = {str(k): int(v) for k, v in data["vocabulary"].items()}
        vec = TfidfVectorizer(
            sublinear_tf=True, stop_words="english", ngram_range=(1, 2), vocabulary=vocabulary
        )
        vec.idf_ = np.asarray(data["idf"], dtype=np.float64)
        return cls(vec)

    def describe(self) -> dict[str, Any]:
        return {"method": "tfidf", "route": None, "dims": len(self.vectoriser.vocabulary_)}

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        return _unit(self.vectoriser.transform(list(texts)).toarray())

    def save(self, folder: Path) -> None:
        data = {
            "vocabulary": {k: int(v) for k, v in self.vectoriser.vocabulary_.items()},
            "idf": [float(x) for x in self.vectoriser.idf_],
        }
        (folder / VECTORISER_FILE).write_text(json.dumps(data), encoding="utf-8")


class RouteEmbedder:
    """Embeddings through a LiteLLM embedding route (the routes the Runner handed to the process)."""

    def __init__(self, route: str, api_key: str = "", batch_size: int = 64, dims: int | None = None) -> None:
        self.route = route
        target = get_route(None, route, "embedding")
        self.secrets = {target.api_key_secret: api_key} if target.api_key_secret and api_key else {}
        self.batch_size = batch_size
        self.dims = dims
        self.usage = Usage()
        preload()

    def describe(self) -> dict[str, Any]:
        return {"method": "litellm", "route": self.route, "dims": self.dims}

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            got = embed(None, self.route, texts[i : i + self.batch_size], secrets=self.secrets)
            rows.extend(got.vectors)
            self.usage.prompt_tokens += got.usage.prompt_tokens
            if got.usage.cost_usd is not None:
                self.usage.cost_usd = (self.usage.cost_usd or 0.0) + got.usage.cost_usd
        out = _unit(np.asarray(rows, dtype=np.float32))
        if out.ndim != 2 or out.shape[0] != len(texts):
            raise ValueError(f"route {self.route!r} returned {len(rows)} vectors for {len(texts)} texts")
        if self.dims is not None and out.shape[1] != self.dims:
            raise ValueError(
                f"route {self.route!r} returned {out.shape[1]} dimensions, the index has {self.dims}"
            )
        self.dims = int(out.shape[1])
        return out

    def save(self, folder: Path) -> None:
        pass


def save_embedder(embedder: Embedder, folder: Path) -> dict[str, Any]:
    """Write `embedder.json` (and the vectoriser, for TF-IDF) into `folder`; returns the description."""
    info = embedder.describe()
    (folder / EMBEDDER_FILE).write_text(json.dumps(info), encoding="utf-8")
    embedder.save(folder)
    return info


def load_embedder(folder: Path, api_key: str = "") -> Embedder:
    """The embedder that made the vectors of `folder`, to embed queries the same way."""
    info = json.loads((folder / EMBEDDER_FILE).read_text(encoding="utf-8"))
    if info.get("method") == "litellm":
        return RouteEmbedder(str(info["route"]), api_key, dims=int(info["dims"]))
    if info.get("method") == "tfidf":
        return TfidfEmbedder.load(folder)
    raise ValueError(f"{folder / EMBEDDER_FILE}: unknown embedding method {info.get('method')!r}")
