"""The `finetune-causal-lm` step: LoRA adapters (peft) on a causal LM (transformers), trained with a plain
PyTorch loop on an instruction dataset. Seeded, gradient accumulation, bf16/fp16 autocast where the
device supports it (fp32 on CPUs), the loss of every logging step reported through `ctx.metric`,
checkpoints every `save_steps` (library/lm_checkpoint.py) from which a retry of the step resumes.

`train_lora` is the training itself, callable without the Runner (bench/gpu_finetune.py compares both)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nocode.library import lm_checkpoint as ckpt
from mlops_nocode.library.lm_common import (
    LMError,
    load_model,
    load_tokenizer,
    model_dir,
    need,
    pick_device,
    pick_dtype,
    preload,
    read_rows,
    seed_everything,
    set_threads,
)
from mlops_nocode.library.lm_data import IGNORE, read_tokens, tokenize_rows
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

preload()  # once per run's fork server, not once per step (lm_common.preload)


class InjectedFailure(RuntimeError):
    """The test-only `fail_at_step` parameter stopped the first attempt on purpose."""


@dataclass(frozen=True)
class TrainConfig:
    """The knobs of one fine-tuning run."""

    epochs: int = 3
    learning_rate: float = 2e-3
    batch_size: int = 8
    gradient_accumulation: int = 1
    max_steps: int = 0
    seed: int = 42
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ()
    device: str = "auto"
    precision: str = "auto"
    logging_steps: int = 1
    save_steps: int = 10
    keep_checkpoints: int = 2
    fail_at_step: int = 0
    cpu_threads: int = 1


@dataclass
class TrainResult:
    """What training did: steps, losses, tokens and timing, and where it resumed from."""

    steps: int
    losses: list[tuple[int, float]]
    tokens: int
    seconds: float
    resumed_from: int
    device: str
    precision: str
    trainable: int
    parameters: int
    peak_memory_mib: float


def _batches(
    rows: list[dict[str, list[int]]], cfg: TrainConfig, epoch: int, pad: int
) -> list[tuple[Any, ...]]:
    """The micro-batches of one epoch, in an order fixed by (seed, epoch), so a resume replays it."""
    torch = need("torch")
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    order = torch.randperm(len(rows), generator=gen).tolist()
    out = []
    for i in range(0, len(order), cfg.batch_size):
        chunk = [rows[j] for j in order[i : i + cfg.batch_size]]
        width = max(len(r["input_ids"]) for r in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        labels = torch.full((len(chunk), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for k, r in enumerate(chunk):
            n = len(r["input_ids"])
            ids[k, :n] = torch.tensor(r["input_ids"])
            labels[k, :n] = torch.tensor(r["labels"])
            mask[k, :n] = 1
        out.append((ids, labels, mask))
    return out


def _targets(names: tuple[str, ...]) -> list[str] | str | None:
    """peft's target_modules: none = its default for the architecture; `all-linear` = every linear layer."""
    if "all-linear" in names:
        return "all-linear"
    return list(names) or None


def train_lora(
    base: Path,
    rows: list[dict[str, list[int]]],
    out: Path,
    cfg: TrainConfig,
    checkpoints: Path | None = None,
    on_loss: Callable[[int, float], None] | None = None,
    first_attempt: bool = True,
) -> TrainResult:
    """Train LoRA adapters on `base` with the tokenized `rows`; save the adapter (and tokenizer) to `out`.
    With `checkpoints`, resume from the newest complete one there and save new ones as training goes."""
    torch = need("torch")
    peft = need("peft")
    device = pick_device(cfg.device)
    dtype, precision = pick_dtype(cfg.precision, device)
    if device == "cpu":
        set_threads(cfg.cpu_threads)
    seed_everything(cfg.seed)
    model = load_model(base, device, dtype if dtype == torch.bfloat16 else None)
    tok = load_tokenizer(base)
    lora = peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=_targets(cfg.target_modules),
    )
    try:
        model = peft.get_peft_model(model, lora)
    except ValueError as e:
        raise LMError(f"LoRA cannot wrap this model: {e}: set target_modules to its layer names") from None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    parameters = sum(p.numel() for p in model.parameters())
    pad = int(tok.pad_token_id if tok.pad_token_id is not None else 0)
    per_epoch = math.ceil(math.ceil(len(rows) / cfg.batch_size) / cfg.gradient_accumulation)
    total = cfg.max_steps or per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    warmup = max(1, total // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / max(1, total))
    )
    progress = ckpt.Progress()
    last = ckpt.latest(checkpoints) if checkpoints is not None else None
    if last is not None:
        progress = ckpt.restore(last, model, optimizer, scheduler)
    resumed_from = progress.step
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    autocast = precision in ("bf16", "fp16")
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    started = time.perf_counter()
    epoch = progress.step // per_epoch
    while progress.step < total:
        batches = _batches(rows, cfg, epoch, pad)
        skip = (progress.step - epoch * per_epoch) * cfg.gradient_accumulation
        groups = [
            batches[i : i + cfg.gradient_accumulation]
            for i in range(skip, len(batches), cfg.gradient_accumulation)
        ]
        for group in groups:
            if progress.step >= total:
                break
            loss_sum = 0.0
            for ids, labels, mask in group:
                ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
                with torch.autocast(device_type=device, dtype=dtype, enabled=autocast):
                    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss / len(group)
                (scaler.scale(loss) if scaler is not None else loss).backward()
                loss_sum += float(loss.detach())
                progress.tokens += int(mask.sum())
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            if progress.step % cfg.logging_steps == 0 or progress.step == total:
                progress.losses.append((progress.step, loss_sum))
                if on_loss is not None:
                    on_loss(progress.step, loss_sum)
            if checkpoints is not None and (progress.step % cfg.save_steps == 0 or progress.step == total):
                ckpt.save(checkpoints, model, optimizer, scheduler, progress, cfg.keep_checkpoints)
            if first_attempt and cfg.fail_at_step and progress.step == cfg.fail_at_step:
                raise InjectedFailure(f"fail_at_step: stopping the first attempt at step {progress.step}")
        epoch += 1
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
    return TrainResult(
        steps=progress.step,
        losses=progress.losses,
        tokens=progress.tokens,
        seconds=seconds,
        resumed_from=resumed_from,
        device=device,
        precision=precision,
        trainable=trainable,
        parameters=parameters,
        peak_memory_mib=peak,
    )


def finetune(
    *,
    dataset: str,
    model: str | None = None,
    model_path: str = "",
    epochs: int = 3,
    learning_rate: float = 2e-3,
    batch_size: int = 8,
    gradient_accumulation: int = 1,
    max_steps: int = 0,
    max_length: int = 256,
    seed: int = 42,
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    target_modules: Sequence[str] = (),
    device: str = "auto",
    precision: str = "auto",
    logging_steps: int = 1,
    save_steps: int = 10,
    keep_checkpoints: int = 2,
    cpu_threads: int = 1,
    fail_at_step: int = 0,
    ctx: StepContext,
) -> dict[str, Any]:
    """Fine-tune LoRA adapters; outputs the adapter, the kept checkpoints and the training metrics."""
    base = model_dir(model, model_path)
    cfg = TrainConfig(
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        gradient_accumulation=gradient_accumulation,
        max_steps=max_steps,
        seed=seed,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=tuple(target_modules),
        device=device,
        precision=precision,
        logging_steps=logging_steps,
        save_steps=save_steps,
        keep_checkpoints=keep_checkpoints,
        fail_at_step=fail_at_step,
        cpu_threads=cpu_threads,
    )
    rows = _rows(dataset, base, max_length)
    work = ckpt.folder_for(Path.cwd(), ctx.step_id)
    if ctx.attempt == 1 and work.exists():  # a checkpoint of an earlier run of the same step id, same run
        ctx.log.info("checkpoints of this step already exist in %s: resuming from them", work)

    def on_loss(step: int, loss: float) -> None:
        ctx.log.info("step %d loss %.4f", step, loss)
        ctx.metric("loss", loss, step=str(step))

    result = train_lora(
        base, rows, ctx.output_dir / "adapter", cfg, work, on_loss, first_attempt=ctx.attempt == 1
    )
    if result.resumed_from:
        ctx.log.info("resumed from the checkpoint of step %d", result.resumed_from)
    losses = [v for _, v in result.losses]
    numbers = {
        "steps": result.steps,
        "resumed_from_step": result.resumed_from,
        "first_loss": losses[0] if losses else 0.0,
        "final_loss": losses[-1] if losses else 0.0,
        "train_seconds": result.seconds,
        "tokens": result.tokens,
        "tokens_per_second": result.tokens / result.seconds if result.seconds > 0 else 0.0,
        "trainable_parameters": result.trainable,
        "parameters": result.parameters,
        "peak_gpu_memory_mib": result.peak_memory_mib,
    }
    ctx.log.info("trained on %s in %s: %d steps", result.device, result.precision, result.steps)
    return {
        "adapter": str(ctx.output_dir / "adapter"),
        "checkpoints": str(ckpt.export(work, ctx.output_dir / "checkpoints")),
        "metrics": report_metrics(ctx, numbers),
    }


def _rows(dataset: str, base: Path, max_length: int) -> list[dict[str, list[int]]]:
    """Token rows from a tokenize-dataset folder, or a JSONL instruction file tokenized here."""
    path = Path(dataset)
    if path.is_dir() and (path / "tokens.jsonl").is_file():
        return read_tokens(path)
    rows, _ = tokenize_rows(load_tokenizer(base), read_rows(path), max_length)
    return rows
