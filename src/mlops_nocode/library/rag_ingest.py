"""RAG ingestion: a folder of Markdown, text and PDF documents -> normalised text records (JSON lines:
source, page, text). Everything in the folder is untrusted: symbolic links and anything that resolves
outside the folder are refused, files over the size cap are skipped, a file that says it is a PDF but is
not one is skipped, and control characters are removed. Each refusal is logged and listed in the report."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

SHIPPED_DOCS = Path(__file__).parent / "rag_data" / "docs"
TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text", ".rst"})
PDF_SUFFIX = ".pdf"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n{3,}")
MAX_DEPTH = 32  # folders below the documents folder


@dataclass
class Ingested:
    """What ingestion kept and what it refused (with why)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    documents: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    total_bytes: int = 0


def normalise(text: str) -> str:
    """`text` in NFC with control and bidirectional-override characters removed, runs of blanks folded."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(" ", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def docs_folder(docs_dir: str) -> Path:
    """The folder to ingest: `docs_dir`, or the shipped documents when it is empty."""
    if not docs_dir:
        return SHIPPED_DOCS
    root = Path(docs_dir)
    if not root.is_absolute():
        raise ValueError(f"docs_dir {docs_dir!r} must be an absolute path to a folder (or empty)")
    if not root.is_dir():
        raise ValueError(f"docs_dir {docs_dir!r} is not a folder on the machine the step runs on")
    return root


def _walk(root: Path, out: Ingested) -> Iterator[tuple[str, int]]:
    """(relative path, fd) of each regular file under root, opened without following links; symbolic
    links (files or folders) are refused and not followed."""
    real_root = os.path.realpath(root)

    def refused(err: OSError) -> None:
        if os.path.normpath(str(err.filename)) == os.path.normpath(root):
            raise ValueError(
                f"cannot read the documents folder {str(root)!r}: {err.strerror}. Steps run confined: let "
                f"them read it with the setting STEP_SANDBOX_READ={root} (where the Runner runs)"
            )
        out.skipped.append(
            {"source": shown(os.path.relpath(str(err.filename), root)), "why": str(err.strerror)}
        )

    for here, dirs, files in os.walk(root, onerror=refused, followlinks=False):
        rel_here = os.path.relpath(here, root)
        depth = 0 if rel_here == "." else rel_here.count(os.sep) + 1
        for name in sorted(dirs):
            if os.path.islink(os.path.join(here, name)):
                out.skipped.append({"source": _rel(rel_here, name), "why": "a symbolic link (not followed)"})
                dirs.remove(name)
            elif depth >= MAX_DEPTH:
                out.skipped.append(
                    {"source": _rel(rel_here, name), "why": f"deeper than {MAX_DEPTH} folders"}
                )
                dirs.remove(name)
        dirs.sort()
        for name in sorted(files):
            rel = _rel(rel_here, name)
            path = os.path.join(here, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as exc:
                why = (
                    "a symbolic link (not followed)"
                    if os.path.islink(path)
                    else f"unreadable: {exc.strerror}"
                )
                out.skipped.append({"source": rel, "why": why})
                continue
            real = os.path.realpath(f"/proc/self/fd/{fd}")
            if os.path.commonpath([real_root, real]) != real_root:
                os.close(fd)
                out.skipped.append({"source": rel, "why": "outside the documents folder"})
                continue
            yield rel, fd


def shown(rel: str) -> str:
    """A file's relative path as records and logs show it: valid UTF-8 (undecodable bytes replaced),
    without control characters (a name cannot forge a log line)."""
    text = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _CONTROL.sub("?", text.replace("\n", "?").replace("\r", "?").replace("\t", "?"))


def _rel(rel_here: str, name: str) -> str:
    return shown(name if rel_here == "." else f"{rel_here}/{name}")


def _read(fd: int, cap: int) -> bytes | None:
    """The file's bytes, or None when it is not a regular file or is over `cap` bytes."""
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
            return None
        data = f.read(cap + 1)
    return None if len(data) > cap else data


def _pdf_pages(data: bytes, max_pages: int) -> list[str]:
    if not data.startswith(b"%PDF-"):
        raise ValueError("not a PDF (no %PDF- header)")
    try:
        from pypdf import PdfReader
    except ImportError:
        raise ValueError("reading PDFs needs the `pypdf` package: pip install 'mlops-nocode[rag]'") from None
    reader = PdfReader(io.BytesIO(data))
    return [page.extract_text() or "" for page in reader.pages[:max_pages]]


def ingest_folder(root: Path, *, max_file_bytes: int, max_total_bytes: int, max_files: int) -> Ingested:
    """Read every supported document under `root` into records, refusing what is unsafe or too big."""
    out = Ingested()
    for rel, fd in _walk(root, out):
        suffix = Path(rel).suffix.lower()
        if suffix not in TEXT_SUFFIXES and suffix != PDF_SUFFIX:
            os.close(fd)
            out.skipped.append({"source": rel, "why": f"unsupported type {suffix or '(none)'}"})
            continue
        if out.documents >= max_files:
            os.close(fd)
            out.skipped.append({"source": rel, "why": f"over the limit of {max_files} documents"})
            continue
        data = _read(fd, max_file_bytes)
        if data is None:
            out.skipped.append({"source": rel, "why": f"not a regular file or over {max_file_bytes} bytes"})
            continue
        if out.total_bytes + len(data) > max_total_bytes:
            out.skipped.append({"source": rel, "why": f"over the total of {max_total_bytes} bytes"})
            continue
        try:
            pages: list[tuple[int | None, str]] = (
                list(enumerate(_pdf_pages(data, 10_000), start=1))
                if suffix == PDF_SUFFIX
                else [(None, data.decode("utf-8", errors="replace"))]
            )
        except Exception as exc:  # pypdf raises many types on malformed files
            out.skipped.append({"source": rel, "why": f"unreadable PDF: {' '.join(str(exc).split())[:200]}"})
            continue
        out.documents += 1
        out.total_bytes += len(data)
        for page, text in pages:
            clean = normalise(text)
            if clean:
                out.records.append({"source": rel, "page": page, "text": clean})
    return out


def ingest(
    *,
    docs_dir: str = "",
    max_file_bytes: int = 5_000_000,
    max_total_bytes: int = 100_000_000,
    max_files: int = 1000,
    ctx: StepContext,
) -> dict[str, Any]:
    """Documents of `docs_dir` (default: the shipped documents about this platform) as text records."""
    root = docs_folder(docs_dir)
    got = ingest_folder(
        root, max_file_bytes=max_file_bytes, max_total_bytes=max_total_bytes, max_files=max_files
    )
    for s in got.skipped:
        ctx.log.warning("skipped %s: %s", s["source"], s["why"])
    if not got.records:
        raise ValueError(
            f"no text could be read from {str(root)!r}: it needs Markdown (.md), text (.txt) or PDF files"
            + (f" ({len(got.skipped)} skipped, see the log)" if got.skipped else "")
        )
    path = ctx.output_dir / "records.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for rec in got.records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    metrics = report_metrics(
        ctx, {"documents": got.documents, "records": len(got.records), "skipped": len(got.skipped)}
    )
    report = {
        **metrics,
        "skipped_files": got.skipped[:100],
        "folder": docs_dir or "shipped",
    }
    return {"records": str(path), "report": report}


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (blank lines ignored)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{n}: expected a JSON object per line")
                rows.append(row)
    return rows
