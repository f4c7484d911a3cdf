"""The `merge-adapter` step: fold LoRA adapters into the base model's weights and export a plain model
folder (safetensors weights, config, tokenizer) that `AutoModelForCausalLM.from_pretrained` loads with
no peft, checked before it is returned: the merged model's logits must match base + adapter's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_nocode.library.lm_common import LMError, load_model, model_dir, need, preload, set_threads
from mlops_nocode.library.lm_eval import generate, load_for_eval
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

preload()  # once per run's fork server, not once per step (lm_common.preload)

TOLERANCE = 1e-3  # largest logit difference accepted between merged and adapted models (fp32)
PROBE = "Instruction : What is the opposite of hot ? Response :"


def merge_adapter(
    *,
    adapter: str,
    model: str | None = None,
    model_path: str = "",
    probe: str = PROBE,
    cpu_threads: int = 1,
    ctx: StepContext,
) -> dict[str, Any]:
    """Merge `adapter` into the base model; output the merged model folder and the check's numbers."""
    torch = need("torch")
    set_threads(cpu_threads)
    base = model_dir(model, model_path)
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise LMError(f"{adapter} holds no adapter_config.json: connect the adapter of finetune-causal-lm")
    adapted, tok = load_for_eval(base, adapter, "cpu")
    ids = tok(probe, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = adapted(input_ids=ids).logits
    merged = adapted.merge_and_unload()
    out = ctx.output_dir / "model"
    merged.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    reloaded = load_model(out, "cpu")  # what users will do: plain transformers, no peft
    reloaded.eval()
    with torch.no_grad():
        diff = float((reloaded(input_ids=ids).logits - before).abs().max())
    if diff > TOLERANCE:
        raise LMError(f"the merged model differs from base + adapter (max logit difference {diff:.2e})")
    sample = generate(reloaded, tok, probe, 8, "cpu")
    ctx.log.info("merged model saved to %s; probe %r -> %r", out, probe, sample)
    params = sum(p.numel() for p in reloaded.parameters())
    metrics = report_metrics(ctx, {"parameters": params, "max_logit_difference": diff})
    return {"model": str(out), "metrics": metrics, "sample": sample}
