"""Fine-tuning throughput and the Runner's overhead: `python -m bench.gpu_finetune [--tiny] [--steps N]`.

Builds a causal LM from a configuration (no download: ~110M parameters, Llama-style, 12 layers of 768, a
32,000-row embedding; `--tiny` is 2 layers of 64 for a CPU), writes a JSONL dataset of long rows made of
the shipped dataset's words, then trains LoRA adapters twice with the same settings:

- directly: `lm_train.train_lora`, the training function of the finetune-causal-lm playbook;
- through the Runner: instruction-dataset -> tokenize-dataset -> finetune-causal-lm, a real plan run by
  the real Runner (fork server, sandbox, events), the model given by `model_path`.

It prints (and writes with `--out FILE`) JSON: the device and precision, parameters, tokens per second of
both, the peak GPU memory, and the overhead ratio of the Runner's finetune step (its wall time from start
to end event) over the direct call (model loading included in both). bf16 on GPUs that support it.
Needs torch, transformers and peft only (the llm-train extra); nothing reaches the network.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"layers": 2, "hidden_size": 64, "heads": 4, "vocab_size": 0, "seq": 64, "rows": 96, "batch": 8},
    "100m": {
        "layers": 12,
        "hidden_size": 768,
        "heads": 12,
        "vocab_size": 32000,
        "seq": 512,
        "rows": 2048,
        "batch": 16,
    },
}


def write_dataset(path: Path, rows: int, words_per_row: int, seed: int) -> None:
    """Instruction rows whose answers are long runs of the shipped dataset's words."""
    from mlops_nocode.library.lm_common import read_rows
    from mlops_nocode.library.lm_data import SHIPPED

    shipped = read_rows(SHIPPED)
    words = sorted({w for r in shipped for w in f"{r.instruction} {r.answer}".split()})
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            answer = " ".join(rng.choice(words) for _ in range(words_per_row))
            f.write(json.dumps({"instruction": f"Continue text {i}", "output": answer}) + "\n")


PIPELINE = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: gpu-finetune-bench, version: 1.0.0}
spec:
  steps:
    - {id: data, uses: playbook/instruction-dataset, with: {path: DATA, test_fraction: 0.01}}
    - id: tokens
      uses: playbook/tokenize-dataset
      with: {model_path: MODEL, max_length: SEQ}
      inputs: {dataset: data.train}
    - id: finetune
      uses: playbook/finetune-causal-lm
      with: WITH
      inputs: {dataset: tokens.tokens}
"""


def through_runner(
    root: Path, data: Path, model: Path, seq: int, params: dict[str, Any], gpu: bool
) -> dict[str, Any]:
    """Run the three-step plan; the finetune step's wall time (start to end event), its metrics and its
    log's first lines. With `gpu`, the finetune step asks for `gpu: 1`: the Runner hands it a device of
    its own (CUDA_VISIBLE_DEVICES) and samples the device's use as metrics."""
    from mlops_nocode.catalogue import Index
    from mlops_nocode.compiler import compile_plan
    from mlops_nocode.runtime.events import Event
    from mlops_nocode.runtime.runner import Runner
    from mlops_nocode.spec import load_file, load_text

    here = Path(__file__).resolve().parents[1] / "catalogue" / "playbooks"
    names = ("instruction-dataset", "tokenize-dataset", "finetune-causal-lm")
    docs = [d for n in names for d in load_file(here / f"{n}.yaml")]
    if gpu:
        docs = [d.model_copy(deep=True) for d in docs]
        docs[-1].spec.resources.gpu = 1
    text = PIPELINE.replace("DATA", str(data)).replace("MODEL", str(model)).replace("SEQ", str(seq))
    text = text.replace("WITH", json.dumps({**params, "model_path": str(model)}))
    plan = compile_plan("pipeline/gpu-finetune-bench", Index(docs + load_text(text)))
    os.environ["STEP_SANDBOX_READ"] = str(root)  # the steps read the model folder given by model_path
    events: list[Event] = []
    result = Runner(plan, home=root / "home", use_cache=False, sink=events.append).run()
    if result.status != "succeeded":
        raise RuntimeError(f"the plan failed: {result.summary()}")
    start = next(e.ts for e in events if e.type == "step.started" and e.step == "finetune")
    end = next(e.ts for e in events if e.type == "step.finished" and e.step == "finetune")
    gpu_metrics = {
        e.data["name"]: e.data["value"]
        for e in events
        if e.type == "metric" and e.step == "finetune" and str(e.data["name"]).startswith("gpu_")
    }
    logs = [str(e.data.get("line", "")) for e in events if e.type == "log" and e.step == "finetune"][:3]
    return {
        "wall_seconds": end - start,
        "metrics": result.steps["finetune"].outputs["metrics"]["value"],
        "gpu_metrics": gpu_metrics,
        "log_head": logs,
    }


def devices() -> dict[str, Any]:
    """What NVML (the platform's discovery) and torch see."""
    import torch

    from mlops_nocode.runtime.gpus import discover

    cuda = bool(torch.cuda.is_available())
    return {
        "nvml": discover(os.environ.get("CUDA_VISIBLE_DEVICES"), fresh=True).to_json(),
        "torch_cuda": cuda,
        "torch_device": torch.cuda.get_device_name(0) if cuda else "",
        "bf16": bool(torch.cuda.is_bf16_supported()) if cuda else False,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model of width 64 (CPU)")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (default 10 tiny, 60 otherwise)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON result here")
    args = ap.parse_args(argv)
    size = SIZES["tiny" if args.tiny else "100m"]
    steps = args.steps or (10 if args.tiny else 60)
    from mlops_nocode.library import lm_tiny, lm_train
    from mlops_nocode.library.lm_common import read_rows
    from mlops_nocode.library.lm_data import tokenize_rows

    root = Path(tempfile.mkdtemp(prefix="gpu-finetune-"))
    data = root / "rows.jsonl"
    write_dataset(data, size["rows"], size["seq"] - 16, seed=1)
    model = root / "model"
    t = time.perf_counter()
    built, tok = lm_tiny.create_model(
        read_rows(data),
        model,
        layers=size["layers"],
        hidden_size=size["hidden_size"],
        heads=size["heads"],
        max_length=size["seq"] + 32,
        vocab_size=size["vocab_size"],
        init_std=0.02 if not args.tiny else 0.2,
    )
    parameters = sum(p.numel() for p in built.parameters())
    del built
    build_seconds = time.perf_counter() - t
    threads = 1 if args.tiny else 0  # one thread for a tiny model on a shared CPU; every core otherwise
    params = {
        "max_steps": steps,
        "batch_size": size["batch"],
        "learning_rate": 2e-4,
        "precision": args.precision,
        "target_modules": ["all-linear"],
        "save_steps": steps,
        "logging_steps": 10,
        "cpu_threads": threads,
    }
    cfg = lm_train.TrainConfig(
        max_steps=steps,
        batch_size=size["batch"],
        learning_rate=2e-4,
        precision=args.precision,
        target_modules=("all-linear",),
        save_steps=steps,
        logging_steps=10,
        cpu_threads=threads,
    )
    rows, _ = tokenize_rows(tok, read_rows(data), size["seq"])
    t = time.perf_counter()
    direct = lm_train.train_lora(model, rows, root / "direct", cfg, root / "direct-ckpt")
    direct_wall = time.perf_counter() - t
    seen = devices()
    runner = through_runner(root, data, model, size["seq"], params, gpu=seen["torch_cuda"])
    m = runner["metrics"]
    out = {
        "size": "tiny" if args.tiny else "100m",
        "parameters": parameters,
        "build_seconds": round(build_seconds, 2),
        "steps": steps,
        "batch_size": size["batch"],
        "sequence": size["seq"],
        "device": direct.device,
        "precision": direct.precision,
        "direct": {
            "wall_seconds": round(direct_wall, 3),
            "train_seconds": round(direct.seconds, 3),
            "tokens_per_second": round(direct.tokens / direct.seconds, 1),
            "peak_gpu_memory_mib": round(direct.peak_memory_mib, 1),
            "trainable": direct.trainable,
            "final_loss": round(direct.losses[-1][1], 4),
        },
        "runner": {
            "wall_seconds": round(runner["wall_seconds"], 3),
            "train_seconds": round(m["train_seconds"], 3),
            "tokens_per_second": round(m["tokens_per_second"], 1),
            "peak_gpu_memory_mib": round(m["peak_gpu_memory_mib"], 1),
            "final_loss": round(m["final_loss"], 4),
        },
        "runner_gpu_metrics": runner["gpu_metrics"],
        "runner_log_head": runner["log_head"],
        "devices": seen,
        "runner_overhead_ratio": round(runner["wall_seconds"] / direct_wall, 3),
        "runner_overhead_seconds": round(runner["wall_seconds"] - direct_wall, 3),
        "config": asdict(cfg),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
