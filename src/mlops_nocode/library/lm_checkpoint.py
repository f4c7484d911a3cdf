"""Training checkpoints of `finetune-causal-lm`: the LoRA adapter, the optimizer and scheduler state, the
step reached and the losses so far, in `checkpoint-<step>/` folders. A folder is written under a
temporary name and renamed when complete, so a step killed while saving never leaves a half checkpoint
that a retry would trust.

Where they live: `<run work folder>/checkpoints/<step id>/` (the run's shared scratch folder, the working
directory of Python steps, kept for the whole run), so the next attempt of the same step in the same run
finds them and resumes; the step also copies the last ones into its `checkpoints` output."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_nocode.library.lm_common import need

STATE = "trainer_state.pt"
INFO = "checkpoint.json"
_NAME = re.compile(r"^checkpoint-(\d{1,9})$")


@dataclass
class Progress:
    """Where training stands: optimizer steps done and the loss of every logged step."""

    step: int = 0
    losses: list[tuple[int, float]] = field(default_factory=list)
    tokens: int = 0


def folder_for(work: Path, step_id: str) -> Path:
    """The checkpoint folder of one step of one run (inside the run's work folder)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "__", step_id).strip(".") or "step"
    return work / "checkpoints" / slug[:150]


def save(root: Path, model: Any, optimizer: Any, scheduler: Any, progress: Progress, keep: int) -> Path:
    """Write checkpoint-<step> atomically; remove all but the `keep` newest."""
    torch = need("torch")
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{progress.step:06d}"
    tmp = root / f".tmp-{progress.step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        },
        tmp / STATE,
    )
    (tmp / INFO).write_text(
        json.dumps({"step": progress.step, "losses": progress.losses, "tokens": progress.tokens})
    )
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in complete(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete(root: Path) -> list[Path]:
    """The complete checkpoints under `root`, oldest first."""
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if _NAME.match(p.name) and (p / INFO).is_file() and (p / STATE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = complete(root)
    return found[-1] if found else None


def restore(path: Path, model: Any, optimizer: Any, scheduler: Any) -> Progress:
    """Load a checkpoint's adapter weights and training state into the live objects; its Progress."""
    torch = need("torch")
    peft = need("peft")
    weights = need("safetensors.torch").load_file(str(path / "adapter_model.safetensors"))
    peft.set_peft_model_state_dict(model, weights)
    state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    info = json.loads((path / INFO).read_text())
    losses = [(int(s), float(v)) for s, v in info.get("losses", [])]
    return Progress(step=int(info["step"]), losses=losses, tokens=int(info.get("tokens", 0)))


def export(root: Path, dest: Path) -> Path:
    """Copy the kept checkpoints into a step's output folder (its `checkpoints` artifact)."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in complete(root):
        shutil.copytree(path, dest / path.name)
    return dest
