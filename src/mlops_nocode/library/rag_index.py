"""RAG index: the embedded chunks in a LanceDB table (embedded, file-based; text, source, page, offset
beside each vector) inside a folder artifact, with the embedder that made the vectors, and the search
over it that the chat service and the evaluation use."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_nocode.library.rag_embed import CHUNKS_FILE, VECTORS_FILE
from mlops_nocode.library.rag_ingest import read_jsonl
from mlops_nocode.library.rag_vectors import EMBEDDER_FILE, VECTORISER_FILE, Embedder, load_embedder
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

TABLE = "chunks"
DB_FOLDER = "lancedb"
RAG_EXTRA = "pip install 'mlops-nocode[rag]'"


def lancedb_module() -> Any:
    """The `lancedb` package, or a clear error naming the extra that installs it."""
    try:
        import lancedb
    except ImportError:
        raise RuntimeError(f"the RAG index needs the `lancedb` package: {RAG_EXTRA}") from None
    return lancedb


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk: where it comes from, how close it is (cosine similarity) and its text."""

    source: str
    page: int | None
    score: float
    text: str

    def citation(self) -> dict[str, Any]:
        return {"source": self.source, "page": self.page, "score": round(self.score, 4), "text": self.text}


def build_index(*, embeddings: str, ctx: StepContext) -> dict[str, Any]:
    """A LanceDB table of the chunks and their vectors, in the `index` folder output."""
    import pyarrow as pa

    lancedb = lancedb_module()

    src = Path(embeddings)
    rows = read_jsonl(src / CHUNKS_FILE)
    vectors = np.load(src / VECTORS_FILE, allow_pickle=False)
    if vectors.ndim != 2 or len(rows) != vectors.shape[0]:
        raise ValueError(f"{embeddings}: {len(rows)} chunks but vectors of shape {vectors.shape}")
    dims = int(vectors.shape[1])
    schema = pa.schema(
        [
            pa.field("vector", pa.list_(pa.float32(), dims)),
            pa.field("text", pa.string()),
            pa.field("source", pa.string()),
            pa.field("page", pa.int32()),
            pa.field("offset", pa.int64()),
        ]
    )
    table = pa.table(
        {
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).ravel()), dims),
            "text": [str(r["text"]) for r in rows],
            "source": [str(r["source"]) for r in rows],
            "page": [r.get("page") for r in rows],
            "offset": [int(r.get("offset", 0)) for r in rows],
        },
        schema=schema,
    )
    folder = ctx.output_dir / "index"
    folder.mkdir()
    db = lancedb.connect(str(folder / DB_FOLDER))
    db.create_table(TABLE, data=table)
    for name in (EMBEDDER_FILE, VECTORISER_FILE):
        if (src / name).exists():
            shutil.copyfile(src / name, folder / name)
    method = json.loads((folder / EMBEDDER_FILE).read_text(encoding="utf-8"))["method"]
    ctx.log.info("indexed %d chunks (%d dimensions, %s vectors) in LanceDB", len(rows), dims, method)
    metrics = report_metrics(ctx, {"rows": len(rows), "dims": dims})
    return {"index": str(folder), "metrics": metrics}


class Retriever:
    """Search an index folder: the question is embedded as the chunks were, then the nearest chunks by
    cosine distance."""

    def __init__(self, folder: str | Path, api_key: str = "") -> None:
        lancedb = lancedb_module()
        self.folder = Path(folder)
        self.embedder: Embedder = load_embedder(self.folder, api_key)
        self.table = lancedb.connect(str(self.folder / DB_FOLDER)).open_table(TABLE)

    def search(self, question: str, k: int) -> list[Passage]:
        """The `k` chunks nearest to `question` (fewer when the question shares nothing with them)."""
        from lancedb.query import LanceVectorQueryBuilder

        vector = self.embedder.vectors([question])[0]
        if not np.any(vector):
            return []
        query = self.table.search(vector, vector_column_name="vector", query_type="vector")
        assert isinstance(query, LanceVectorQueryBuilder)
        hits = query.distance_type("cosine").limit(k).to_list()
        out = []
        for h in hits:
            score = 1.0 - float(h["_distance"])
            if score > 1e-6:
                page = h.get("page")
                out.append(
                    Passage(str(h["source"]), int(page) if page is not None else None, score, str(h["text"]))
                )
        return out
