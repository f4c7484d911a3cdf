"""What the language-model playbooks share: the optional `llm-train` extra's lazy imports (torch,
transformers and peft are never imported by the rest of the platform), the offline switches, the device
and precision choice, the instruction-row format and reading a model folder."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXTRA = "pip install torch==2.13.0 'mlops-nocode[llm-train]'"
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PROMPT = "Instruction : {instruction}{input} Response :"
"""How an instruction row becomes a prompt; the model learns to continue it with the row's output."""

MAX_ROW_CHARS = 20_000
MAX_ROWS = 1_000_000


class LMError(ValueError):
    """A language-model step cannot go on; the message says why and how to fix it."""


def offline() -> None:
    """Never reach the Hugging Face Hub: models come from artifacts or local paths only."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # no progress bars in step logs
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # peft 0.21 calls an attribute transformers 5 deprecates: a warning per step log, nothing to act on
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def preload() -> None:
    """Import torch, transformers' causal-LM classes and peft now, when they are installed (nothing when
    not: the step then fails saying what to install). The step modules call this at import: a run's fork
    server imports its steps' modules once before forking them (runtime/launching.py), so each step of
    the run starts with these already loaded instead of spending seconds importing them again. Only runs
    with these steps, and code importing these modules, ever load torch."""
    offline()
    try:
        import peft  # noqa: F401
        import transformers

        transformers.AutoModelForCausalLM, transformers.AutoTokenizer  # noqa: B018 - lazy attributes
    except Exception:
        pass


def need(module: str) -> Any:
    """Import `module` of the llm-train extra (torch, transformers, peft) or say how to install it."""
    import importlib

    offline()
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise LMError(f"this step needs the `{module.split('.')[0]}` package ({e}): {EXTRA}") from None


def set_threads(threads: int) -> None:
    """Torch's CPU threads: `threads`, or torch's default (every core) for 0. One thread is the fastest
    for small models on a shared machine: more spin and wait on each other."""
    if threads > 0:
        need("torch").set_num_threads(threads)


def pick_device(device: str) -> str:
    """`auto` is `cuda` when a CUDA device is visible, else `cpu`; `cuda` without one is an error."""
    torch = need("torch")
    if device not in DEVICES:
        raise LMError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    has_cuda = bool(torch.cuda.is_available())
    if device == "cuda" and not has_cuda:
        raise LMError(
            "device 'cuda' was asked for but no CUDA device is visible (CUDA_VISIBLE_DEVICES, driver): "
            "use device 'auto' or 'cpu', or place the step on a GPU target"
        )
    return "cuda" if device == "auto" and has_cuda else ("cpu" if device == "auto" else device)


def pick_dtype(precision: str, device: str) -> tuple[Any, str]:
    """The torch dtype of training and its name: `auto` takes bf16 where the device supports it, else
    fp16 on CUDA, else fp32 (CPUs train in fp32)."""
    torch = need("torch")
    if precision not in PRECISIONS:
        raise LMError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if device != "cuda":
        if precision in ("bf16", "fp16"):
            raise LMError(f"precision {precision} needs a CUDA device (this step runs on {device}): use auto")
        return torch.float32, "fp32"
    bf16 = bool(torch.cuda.is_bf16_supported())
    if precision == "bf16" and not bf16:
        raise LMError("this GPU does not support bf16: use precision fp16 or auto")
    if precision == "auto":
        precision = "bf16" if bf16 else "fp16"
    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    return table[precision], precision


@dataclass(frozen=True)
class Example:
    """One instruction row: the instruction, its optional input, and the answer the model should give."""

    instruction: str
    input: str
    answer: str

    @property
    def prompt(self) -> str:
        """What the model sees before the answer."""
        extra = f" Input : {self.input}" if self.input else ""
        return PROMPT.format(instruction=self.instruction, input=extra)

    def row(self) -> dict[str, str]:
        """The row as JSON, in the dataset's own format."""
        return {"instruction": self.instruction, "input": self.input, "output": self.answer}


def read_rows(path: str | Path) -> list[Example]:
    """The rows of a JSONL instruction file ({instruction, input?, output} per line; `prompt`/`response`
    and `question`/`answer` are accepted too); a bad line is an error naming its number."""
    p = Path(path)
    if p.is_dir():
        p = p / "rows.jsonl"
    out: list[Example] = []
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if len(line) > MAX_ROW_CHARS:
                raise LMError(f"{p.name} line {n}: longer than {MAX_ROW_CHARS} characters: shorten it")
            if len(out) >= MAX_ROWS:
                raise LMError(f"{p.name}: more than {MAX_ROWS} rows: split the dataset")
            out.append(_example(line, n, p.name))
    if not out:
        raise LMError(f"{p.name} holds no rows: give a JSONL file with one {{instruction, output}} per line")
    return out


def _example(line: str, n: int, name: str) -> Example:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise LMError(f"{name} line {n}: not JSON ({e.msg}): write one JSON object per line") from None
    if not isinstance(row, dict):
        raise LMError(f'{name} line {n}: not a JSON object: write {{"instruction": ..., "output": ...}}')
    instruction = row.get("instruction", row.get("prompt", row.get("question")))
    answer = row.get("output", row.get("response", row.get("answer")))
    extra = row.get("input", "")
    if not isinstance(instruction, str) or not instruction.strip():
        raise LMError(f"{name} line {n}: no text under 'instruction' (or 'prompt', 'question')")
    if not isinstance(answer, str) or not answer.strip():
        raise LMError(f"{name} line {n}: no text under 'output' (or 'response', 'answer')")
    if not isinstance(extra, str):
        raise LMError(f"{name} line {n}: 'input' must be text")
    return Example(instruction=instruction.strip(), input=extra.strip(), answer=answer.strip())


def model_dir(model: str | None, model_path: str, what: str = "model") -> Path:
    """The folder of a causal LM: the `model` input (an artifact) or else the `model_path` parameter."""
    chosen = model or model_path
    if not chosen:
        raise LMError(f"no {what}: connect the `{what}` input, or set model_path to a local model folder")
    p = Path(chosen)
    if not p.is_absolute() and not model:
        raise LMError(f"model_path {model_path[:200]!r} must be an absolute path of a model folder")
    if not (p / "config.json").is_file():
        raise LMError(
            f"{p} is not a model folder (no config.json): give a folder saved with save_pretrained "
            "(a Hugging Face model folder, the model output of tiny-causal-lm or merge-adapter)"
        )
    return p


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer saved beside a model (or adapter), with a pad token."""
    transformers = need("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(folder: Path, device: str, dtype: Any = None) -> Any:
    """A causal LM from a local folder, on `device` (never downloaded, never runs code from the folder)."""
    transformers = need("transformers")
    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
    if dtype is not None:
        kwargs["dtype"] = dtype
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    return model.to(device)


def seed_everything(seed: int) -> None:
    """Seed Python, torch (CPU and CUDA) for repeatable runs."""
    import random

    torch = need("torch")
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
