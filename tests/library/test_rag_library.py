"""The RAG steps called as functions: ingestion of hostile folders, chunking, TF-IDF embedding, the LanceDB
index and its search, answers, and the evaluation's scores."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mlops_nocode.library import rag_answer, rag_chunk, rag_embed, rag_evaluate, rag_index, rag_ingest
from mlops_nocode.library.rag_ingest import ingest_folder, normalise
from tests.library.rag_support import DOCS, tiny_pdf

from .support import MakeCtx

CAPS = {"max_file_bytes": 100_000, "max_total_bytes": 1_000_000, "max_files": 100}


def skipped(got: rag_ingest.Ingested) -> dict[str, str]:
    return {s["source"]: s["why"] for s in got.skipped}


def test_shipped_documents_give_markdown_text_and_pdf_pages() -> None:
    got = ingest_folder(DOCS, **CAPS)
    assert got.skipped == []
    kinds = {Path(r["source"]).suffix for r in got.records}
    assert kinds == {".md", ".txt", ".pdf"}
    pages = sorted(r["page"] for r in got.records if r["source"] == "serving.pdf")
    assert pages == [1, 2]
    assert all(r["page"] is None for r in got.records if not r["source"].endswith(".pdf"))


def test_hostile_folder_is_read_safely(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("TOP SECRET outside the folder")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "good.md").write_text("# Good\n\nA fine   document.\r\n")
    (docs / "fake.pdf").write_bytes(b"#!/bin/sh\nrm -rf /\n")  # says PDF, is not one
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<>> garbage")  # a header and nothing else
    (docs / "huge.txt").write_bytes(b"word " * 40_000)  # 200 kB: over the 100 kB cap
    (docs / "link.md").symlink_to(outside / "secret.md")
    (docs / "linked-dir").symlink_to(outside, target_is_directory=True)
    (docs / "sub" / "ctl.txt").write_text("bell\x07 esc\x1b[31m red\u202e reversed\x00 nul\ufeff end")
    os.mkfifo(docs / "pipe.md")  # opening it must not hang
    (docs / "image.png").write_bytes(b"\x89PNG")
    (docs / "real.pdf").write_bytes(tiny_pdf([["Page one text."], ["Page two text."]]))
    got = ingest_folder(docs, **CAPS)
    why = skipped(got)
    assert "not a PDF" in why["fake.pdf"]
    assert "unreadable PDF" in why["broken.pdf"]
    assert "over 100000 bytes" in why["huge.txt"]
    assert "symbolic link" in why["link.md"] and "symbolic link" in why["linked-dir"]
    assert "not a regular file" in why["pipe.md"]
    assert "unsupported" in why["image.png"]
    text = json.dumps(got.records)
    assert "TOP SECRET" not in text and "rm -rf" not in text
    by_source = {(r["source"], r["page"]): r["text"] for r in got.records}
    assert by_source[("good.md", None)] == "# Good\n\nA fine document."
    ctl = by_source[("sub/ctl.txt", None)]
    assert ctl == "bell esc [31m red reversed nul end"
    assert by_source[("real.pdf", 2)] == "Page two text."


def test_caps_on_count_and_total(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"d{i}.txt").write_text(f"document {i} " * 100)
    got = ingest_folder(tmp_path, max_file_bytes=10_000, max_total_bytes=3000, max_files=100)
    assert got.documents == 2 and sum("total" in s["why"] for s in got.skipped) == 3
    got = ingest_folder(tmp_path, max_file_bytes=10_000, max_total_bytes=10**6, max_files=3)
    assert got.documents == 3 and sum("limit of 3" in s["why"] for s in got.skipped) == 2


def test_ingest_step_refuses_an_empty_or_relative_folder(tmp_path: Path, make_ctx: MakeCtx) -> None:
    with pytest.raises(ValueError, match="absolute path"):
        rag_ingest.ingest(docs_dir="docs", ctx=make_ctx())
    (tmp_path / "only.png").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"no text could be read .*1 skipped"):
        rag_ingest.ingest(docs_dir=str(tmp_path), ctx=make_ctx())


def test_normalise_keeps_newlines_and_folds_blanks() -> None:
    assert normalise("a\t\tb\n\n\n\nc\r\nd\u0085e") == "a b\n\nc\nd e"


@pytest.mark.parametrize(("size", "overlap"), [(50, 10), (80, 0), (200, 150), (7, 3)])
def test_chunks_overlap_and_point_back_into_the_text(size: int, overlap: int) -> None:
    text = " ".join(f"word{i}" for i in range(300)) + " " + "x" * 30
    pieces = rag_chunk.split_text(text, size, overlap)
    assert all(len(p) <= size for _, p in pieces)
    assert all(text[off : off + len(p)] == p for off, p in pieces)
    covered = set()
    for off, p in pieces:
        covered.update(range(off, off + len(p)))
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())  # nothing is lost
    offsets = [off for off, _ in pieces]
    assert offsets == sorted(set(offsets))  # always moves forward
    if overlap and size >= 50:
        assert any(a + len(p) > b for (a, p), b in zip(pieces, offsets[1:], strict=False))


def test_chunk_refuses_an_overlap_not_below_the_size() -> None:
    with pytest.raises(ValueError, match="overlap"):
        rag_chunk.split_text("some text", 10, 10)


@pytest.fixture
def index(make_ctx: MakeCtx) -> str:
    records = rag_ingest.ingest(ctx=make_ctx())["records"]
    chunks = rag_chunk.chunk(records=records, ctx=make_ctx())["chunks"]
    emb = rag_embed.embed_chunks(chunks=chunks, ctx=make_ctx())
    assert emb["embedder"]["method"] == "tfidf" and emb["embedder"]["route"] is None
    return str(rag_index.build_index(embeddings=emb["embeddings"], ctx=make_ctx())["index"])


def test_tfidf_index_finds_the_right_document(index: str) -> None:
    assert not list(Path(index).rglob("*.pkl")) and not list(Path(index).rglob("*.joblib"))
    retriever = rag_index.Retriever(index)
    for q in rag_evaluate.load_questions(""):
        best = retriever.search(q["question"], 4)[0]
        assert best.source in q["sources"], q
    assert retriever.search("zzzz qqqq", 4) == []


def test_extractive_answer_cites_and_says_so(index: str) -> None:
    answerer = rag_answer.Answerer(rag_index.Retriever(index))
    reply = answerer.ask("How do I stop a model serving service?")
    assert reply.mode == "extractive"
    assert reply.answer.startswith(rag_answer.EXTRACTIVE_NOTE)
    assert reply.citations[0]["source"] == "serving.pdf" and reply.citations[0]["page"] == 1
    assert "mlops serve stop" in reply.answer
    none = answerer.ask("zzzz qqqq")
    assert none.citations == [] and "none of the documents" in none.answer


def test_scores_of_one_answer() -> None:
    q = {"question": "q", "sources": ["a.md"], "terms": ["Alpha", "beta"]}
    body = {"answer": "alpha only", "citations": [{"source": "a.md"}, {"source": "b.md"}], "mode": "x"}
    row = rag_evaluate.score_answer(q, body, 4)
    assert (row["hit"], row["citation_correctness"], row["term_coverage"]) == (1.0, 0.5, 0.5)
    assert rag_evaluate.score_answer(q, body | {"citations": []}, 4)["hit"] == 0.0


def test_question_sets_and_endpoints_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "q.json"
    bad.write_text(json.dumps([{"question": "ok", "sources": [1]}]))
    with pytest.raises(ValueError, match="lists of strings"):
        rag_evaluate.load_questions(str(bad))
    value = tmp_path / "endpoint.json"
    value.write_text(json.dumps({"url": "http://127.0.0.1:1/", "service": "s"}))
    assert rag_evaluate.endpoint_url(str(value)) == "http://127.0.0.1:1"
    with pytest.raises(ValueError, match="no http"):
        rag_evaluate.endpoint_url({"url": "file:///etc/passwd"})


def test_hostile_names_and_depth(tmp_path: Path, make_ctx: MakeCtx) -> None:
    docs = tmp_path / "docs"
    deep = docs.joinpath(*["d"] * 40)
    deep.mkdir(parents=True)
    (deep / "deep.md").write_text("too deep")
    (docs / "evil\nWARNING forged line.md").write_text("a name with a newline")
    (docs / os.fsdecode(b"bad\xff\xfe.txt")).write_text("a name that is not UTF-8")
    (docs / "ok.md").write_text("fine")
    out = rag_ingest.ingest(docs_dir=str(docs), ctx=make_ctx())
    sources = {r["source"] for r in rag_ingest.read_jsonl(out["records"])}
    assert sources == {"evil?WARNING forged line.md", "bad\ufffd\ufffd.txt", "ok.md"}
    why = {s["source"]: s["why"] for s in out["report"]["skipped_files"]}
    assert why == {"/".join(["d"] * 32) + "/d": "deeper than 32 folders"}


def test_without_the_rag_extra_the_error_says_what_to_install(
    index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lancedb", None)  # as if not installed: importing it fails
    monkeypatch.setitem(sys.modules, "pypdf", None)
    with pytest.raises(RuntimeError, match=r"pip install 'mlops-nocode\[rag\]'"):
        rag_index.Retriever(index)
    got = ingest_folder(DOCS, **CAPS)
    assert "pip install 'mlops-nocode[rag]'" in skipped(got)["serving.pdf"]
    assert {r["source"] for r in got.records} == {"overview.md", "targets.md", "secrets.md", "monitoring.txt"}
