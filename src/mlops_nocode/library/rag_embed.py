"""RAG embedding step: chunks -> vectors, through the LiteLLM embedding route named by `embedding_model`,
or, when it is empty, a local TF-IDF vectoriser fitted on the chunks. The output folder holds the chunks,
the vectors (`vectors.npy`) and how they were made (`embedder.json`), which the `embedder` output says."""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np

from mlops_nocode.library.rag_ingest import read_jsonl
from mlops_nocode.library.rag_vectors import Embedder, RouteEmbedder, TfidfEmbedder, save_embedder
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

VECTORS_FILE = "vectors.npy"
CHUNKS_FILE = "chunks.jsonl"


def embed_chunks(
    *, chunks: str, embedding_model: str = "", api_key: str = "", batch_size: int = 64, ctx: StepContext
) -> dict[str, Any]:
    """Embed every chunk; `api_key` is the route's provider key, passed as `${{ secrets.NAME }}`."""
    rows = read_jsonl(chunks)
    texts = [str(r.get("text", "")) for r in rows]
    if not texts:
        raise ValueError("no chunks to embed")
    embedder: Embedder
    if embedding_model:
        embedder = RouteEmbedder(embedding_model, api_key, batch_size)
        ctx.log.info("embedding %d chunks through route %s", len(texts), embedding_model)
    else:
        embedder = TfidfEmbedder.fit(texts)
        ctx.log.info("no embedding_model: embedding %d chunks with a local TF-IDF vectoriser", len(texts))
    vectors = embedder.vectors(texts)
    folder = ctx.output_dir / "embeddings"
    folder.mkdir()
    np.save(folder / VECTORS_FILE, vectors, allow_pickle=False)
    shutil.copyfile(chunks, folder / CHUNKS_FILE)
    info = save_embedder(embedder, folder)
    numbers: dict[str, float] = {"chunks": len(texts), "dims": int(vectors.shape[1])}
    if isinstance(embedder, RouteEmbedder):
        numbers.update(embedder.usage.metrics("embedding_"))
    metrics = report_metrics(ctx, numbers)
    return {"embeddings": str(folder), "embedder": info, "metrics": metrics}
