"""The `evaluate-lm` step: perplexity of the answers and exact-match of greedy generations on held-out
instruction rows, for a model folder alone or with LoRA adapters on it; and the `generate` helper the
merge check and the chat service use."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlops_nocode.library.lm_common import (
    Example,
    load_model,
    load_tokenizer,
    model_dir,
    need,
    pick_device,
    preload,
    read_rows,
    set_threads,
)
from mlops_nocode.library.lm_data import IGNORE, encode
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

preload()  # once per run's fork server, not once per step (lm_common.preload)

SAMPLES = 20  # rows shown in the report


def load_for_eval(base: Path, adapter: str | None, device: str) -> tuple[Any, Any]:
    """The model (with the adapter applied when given) in eval mode, and its tokenizer."""
    model = load_model(base, device)
    tok = load_tokenizer(Path(adapter) if adapter else base)
    if adapter:
        peft = need("peft")
        model = peft.PeftModel.from_pretrained(model, adapter, is_trainable=False)
    model.eval()
    return model, tok


def generate(model: Any, tok: Any, prompt: str, max_new_tokens: int, device: str) -> str:
    """Greedy continuation of `prompt`, decoded without special tokens."""
    torch = need("torch")
    ids = tok(prompt, return_tensors="pt", add_special_tokens=True)["input_ids"].to(device)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
    return str(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)).strip()


def normalise(tok: Any, text: str) -> str:
    """Text as the tokenizer can write it back (word-level vocabularies drop spacing), lower-cased."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return " ".join(str(tok.decode(ids, skip_special_tokens=True)).lower().split())


def evaluate_lm(
    *,
    dataset: str,
    model: str | None = None,
    adapter: str | None = None,
    model_path: str = "",
    max_rows: int = 200,
    max_new_tokens: int = 16,
    max_length: int = 256,
    device: str = "auto",
    cpu_threads: int = 1,
    ctx: StepContext,
) -> dict[str, Any]:
    """Perplexity (exp of the mean loss over answer tokens) and exact-match on up to `max_rows` rows."""
    torch = need("torch")
    base = model_dir(model, model_path)
    dev = pick_device(device)
    if dev == "cpu":
        set_threads(cpu_threads)
    lm, tok = load_for_eval(base, adapter, dev)
    rows: list[Example] = read_rows(dataset)[:max_rows]
    nll, count, exact = 0.0, 0, 0
    samples: list[dict[str, Any]] = []
    for r in rows:
        ids, labels, _ = encode(tok, r, max_length)
        n = sum(1 for x in labels if x != IGNORE)
        if n == 0:
            continue
        with torch.no_grad():
            loss = lm(
                input_ids=torch.tensor([ids], device=dev), labels=torch.tensor([labels], device=dev)
            ).loss
        # the model shifts labels by one: n answer tokens give n predictions when the prompt is not empty
        nll += float(loss) * n
        count += n
        got = generate(lm, tok, r.prompt, max_new_tokens, dev)
        hit = normalise(tok, got) == normalise(tok, r.answer)
        exact += hit
        if len(samples) < SAMPLES:
            samples.append({"prompt": r.prompt, "expected": r.answer, "generated": got, "exact": hit})
    mean = nll / count if count else float("nan")
    numbers = {
        "perplexity": math.exp(min(mean, 50.0)),
        "loss": mean,
        "exact_match": exact / len(rows) if rows else 0.0,
        "rows": len(rows),
        "answer_tokens": count,
    }
    ctx.log.info(
        "perplexity %.3f, exact match %.3f on %d rows",
        numbers["perplexity"],
        numbers["exact_match"],
        len(rows),
    )
    return {"metrics": report_metrics(ctx, numbers), "report": {"samples": samples}}
