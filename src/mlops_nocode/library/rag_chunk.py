"""RAG chunking: text records -> overlapping chunks (JSON lines: id, source, page, offset, text), cut at
word boundaries so that a passage never starts or ends inside a word."""

from __future__ import annotations

import json
from typing import Any

from mlops_nocode.library.rag_ingest import read_jsonl
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext


def split_text(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """(character offset, passage) pairs of at most `size` characters (a longer word is cut), each
    starting about `overlap` characters before the previous one ended."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"chunk_size ({size}) must be positive and overlap ({overlap}) below it")
    out: list[tuple[int, str]] = []
    start, n = 0, len(text)
    while start < n:
        while start < n and text[start].isspace():
            start += 1
        if start >= n:
            break
        end = min(n, start + size)
        if end < n:
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            if cut > start:
                end = cut
        piece = text[start:end].strip()
        if piece:
            out.append((start, piece))
        if end >= n:
            break
        nxt = end - overlap
        if nxt > start:  # back up to the start of a word
            space = max(text.rfind(" ", start, nxt), text.rfind("\n", start, nxt))
            nxt = space + 1 if space > start else nxt
        start = nxt if nxt > start else end
    return out


def chunk(*, records: str, chunk_size: int = 600, overlap: int = 120, ctx: StepContext) -> dict[str, Any]:
    """Overlapping chunks of every record, each with its source, page and character offset."""
    rows = read_jsonl(records)
    path = ctx.output_dir / "chunks.jsonl"
    count = 0
    with path.open("w", encoding="utf-8") as f:
        for rec in rows:
            text = rec.get("text")
            if not isinstance(text, str):
                continue
            for offset, piece in split_text(text, chunk_size, overlap):
                row = {
                    "id": count,
                    "source": str(rec.get("source", "")),
                    "page": rec.get("page"),
                    "offset": offset,
                    "text": piece,
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    if count == 0:
        raise ValueError("the records hold no text to chunk")
    metrics = report_metrics(ctx, {"chunks": count, "records": len(rows)})
    return {"chunks": str(path), "metrics": metrics}
