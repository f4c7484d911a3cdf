"""The instruction-dataset steps: `instruction-dataset` (a JSONL file, checked and split into train and
held-out rows) and `tokenize-dataset` (rows -> token ids with the model's tokenizer, the prompt masked
out of the labels so only the answer is learnt)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from mlops_nocode.library.lm_common import Example, LMError, load_tokenizer, model_dir, preload, read_rows
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

preload()  # once per run's fork server, not once per step (lm_common.preload)

SHIPPED = Path(__file__).parent / "llm_data" / "instructions.jsonl"
TOKENS_FILE = "tokens.jsonl"
IGNORE = -100  # the label torch's cross-entropy skips


def instruction_dataset(
    *, path: str = "", test_fraction: float = 0.15, max_rows: int = 0, seed: int = 42, ctx: StepContext
) -> dict[str, Any]:
    """Read a JSONL instruction dataset (`path`, empty = the shipped one), check every row, shuffle with
    `seed` and split off `test_fraction` of the rows as the held-out `test` file."""
    source = Path(path) if path else SHIPPED
    if path and not source.is_absolute():
        raise LMError(f"path {path[:200]!r} must be an absolute path of a JSONL file")
    if not source.is_file():
        raise LMError(f"path {str(source)[:200]!r} is not a file: give a JSONL file of instruction rows")
    rows = read_rows(source)
    random.Random(seed).shuffle(rows)
    if max_rows:
        rows = rows[:max_rows]
    n_test = max(1, round(len(rows) * test_fraction)) if len(rows) > 1 else 0
    test, train = rows[:n_test], rows[n_test:]
    out = {
        "train": _write(ctx.output_dir / "train.jsonl", train),
        "test": _write(ctx.output_dir / "test.jsonl", test),
    }
    ctx.log.info("%d rows from %s: %d to train, %d held out", len(rows), source.name, len(train), len(test))
    metrics = report_metrics(ctx, {"rows": len(rows), "train_rows": len(train), "test_rows": len(test)})
    return {**out, "metrics": metrics}


def _write(path: Path, rows: list[Example]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r.row()) + "\n")
    return str(path)


def encode(tok: Any, example: Example, max_length: int) -> tuple[list[int], list[int], bool]:
    """Token ids and labels of one row (prompt tokens labelled IGNORE, answer + end-of-sequence learnt)
    and whether it was cut to `max_length`."""
    prompt = list(tok(example.prompt, add_special_tokens=True)["input_ids"])
    answer = list(tok(" " + example.answer, add_special_tokens=False)["input_ids"])
    if tok.eos_token_id is not None:
        answer.append(int(tok.eos_token_id))
    ids = prompt + answer
    labels = [IGNORE] * len(prompt) + answer
    cut = len(ids) > max_length
    return ids[:max_length], labels[:max_length], cut


def tokenize_rows(tok: Any, rows: list[Example], max_length: int) -> tuple[list[dict[str, list[int]]], int]:
    """Every row encoded; the number that were cut."""
    out, cut = [], 0
    for r in rows:
        ids, labels, was_cut = encode(tok, r, max_length)
        cut += was_cut
        if any(x != IGNORE for x in labels):
            out.append({"input_ids": ids, "labels": labels})
    if not out:
        raise LMError(f"no row keeps an answer token within max_length {max_length}: raise max_length")
    return out, cut


def tokenize_dataset(
    *, dataset: str, model: str | None = None, model_path: str = "", max_length: int = 256, ctx: StepContext
) -> dict[str, Any]:
    """Encode a JSONL instruction file with the tokenizer of the model (the `model` input or
    `model_path`) into `tokens` (a folder: tokens.jsonl of {input_ids, labels}, and the tokenizer)."""
    folder = model_dir(model, model_path)
    tok = load_tokenizer(folder)
    rows, cut = tokenize_rows(tok, read_rows(dataset), max_length)
    out = ctx.output_dir / "tokens"
    out.mkdir()
    with open(out / TOKENS_FILE, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    tok.save_pretrained(str(out))
    (out / "meta.json").write_text(json.dumps({"max_length": max_length, "model": str(folder)}))
    n_tokens = sum(len(r["input_ids"]) for r in rows)
    ctx.log.info("%d rows, %d tokens (%d cut to %d)", len(rows), n_tokens, cut, max_length)
    metrics = report_metrics(ctx, {"rows": len(rows), "tokens": n_tokens, "truncated_rows": cut})
    return {"tokens": str(out), "metrics": metrics}


def read_tokens(folder: str | Path) -> list[dict[str, list[int]]]:
    """The rows a tokenize-dataset step wrote."""
    rows = []
    with open(Path(folder) / TOKENS_FILE, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            row = json.loads(line)
            if not (isinstance(row, dict) and _ints(row.get("input_ids")) and _ints(row.get("labels"))):
                raise LMError(f"{TOKENS_FILE} line {n}: not a tokenize-dataset row: re-run tokenize-dataset")
            rows.append(row)
    return rows


def _ints(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, int) for x in v)
