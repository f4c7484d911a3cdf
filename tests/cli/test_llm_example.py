"""The LLM fine-tuning example (metapipeline/llm-finetune) through the real `mlops` command: planned on GPU
clouds with costs; run here on the CPU with the tiny model, its first training attempt failing on purpose
after step 12 so the Runner's retry resumes from the checkpoint of step 10; the merged model is served
behind a model route that llm-chat calls through LiteLLM, and the route goes with the service."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mlops_nocode.integrations.litellm.routes import load_routes
from tests.conftest import CliResult, none_left

Mlops = Callable[..., CliResult]
REF = "metapipeline/llm-finetune"


def test_the_example_runs_here_resuming_a_failed_finetune(mlops: Mlops, home: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    r = mlops("run", REF, "--target", "local", "--set", "fail_at_step=12", "--json", "--events", str(events))
    assert r.code == 0, r
    summary = r.json()
    assert summary["status"] == "succeeded", summary
    assert all(s["status"] == "succeeded" for s in summary["steps"].values())
    out = summary["outputs"]
    train = out["train_metrics"]
    assert train["resumed_from_step"] == 10 and train["steps"] > 12
    assert train["final_loss"] < 0.75 * train["first_loss"]
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    failed = [e for e in lines if e["type"] == "step.failed" and e["step"] == "train/finetune"]
    assert len(failed) == 1 and "fail_at_step" in json.dumps(failed[0])
    losses = [
        int(e["data"]["labels"]["step"])
        for e in lines
        if e["type"] == "metric" and e["step"] == "train/finetune" and e["data"]["name"] == "loss"
    ]
    assert losses[:14] == [*range(1, 13), 11, 12]  # the retry went on from step 10, not from step 1
    assert 1 < out["eval_metrics"]["perplexity"] < 1000 and 0 <= out["eval_metrics"]["exact_match"] <= 1
    merged = Path(out["merged_model"])
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    assert isinstance(out["answer"], str) and out["answer"].strip()
    assert "fine-tuned" not in load_routes(home)  # the service and its route ended with the run
    assert none_left("--service serve-serve")


def test_the_plan_puts_training_on_gpu_clouds_with_costs(mlops: Mlops) -> None:
    r = mlops("plan", REF, "--json")
    assert r.code == 0, r
    steps = {s["id"]: s for s in r.json()["steps"]}
    for sid in ("train/finetune", "train/evaluate", "train/merge"):
        placed = steps[sid]["placement"]
        assert placed["provider"] == "runpod" and placed["offer"]["gpu_count"] >= 1
        assert placed["offer"]["gpu_memory_gib"] >= 16 and placed["price_per_hour"] > 0
    for sid in ("data/dataset", "serve/serve", "serve/ask"):
        assert steps[sid]["placement"]["provider"] == "local"
    # a launch target replaces llm-train's: give the GPU need again (Vast.ai takes no min_gpu_memory option)
    for provider, memory in (("vastai", 0), ("exoscale", 16)):
        gpu = ["--target-option", "gpu_count=1"]
        gpu += ["--target-option", f"min_gpu_memory={memory}Gi"] if memory else []
        r = mlops("plan", REF, "--target", provider, *gpu, "--json")
        assert r.code == 0, r
        steps = {s["id"]: s for s in r.json()["steps"]}
        placed = steps["train/finetune"]["placement"]
        assert placed["provider"] == provider and placed["offer"]["gpu_count"] >= 1
        assert placed["offer"]["gpu_memory_gib"] >= memory and placed["price_per_hour"] > 0
        assert steps["serve/serve"]["placement"]["provider"] == "local"  # pinned: routes live here
    bad = mlops("plan", REF, "--target", "exoscale", "--target-option", "gpu_count=many")
    assert bad.code == 2 and "gpu_count" in bad.stderr and "fix:" in bad.stderr
    refused = mlops("run", REF)  # without --target local, training would need a RunPod GPU
    assert refused.code == 2 and "runpod" in refused.stderr
