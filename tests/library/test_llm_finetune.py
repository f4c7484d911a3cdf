"""The LLM fine-tuning playbooks on the CPU with a tiny model built from the shipped dataset (fixed seeds):
the loss falls, evaluation and merging work, the merged folder loads with plain transformers and
generates, and a retried fine-tune resumes from its last checkpoint and takes the same steps as an
uninterrupted one (tests/cli/test_llm_example.py retries it through the Runner)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.library import lm_checkpoint, lm_data, lm_eval, lm_merge, lm_tiny, lm_train
from mlops_nocode.library.lm_common import LMError
from mlops_nocode.runtime.context import StepContext

CONFIG = lm_train.TrainConfig(
    max_steps=40, learning_rate=1e-2, target_modules=("all-linear",), save_steps=5, logging_steps=1
)


def _ctx(root: Path, name: str) -> StepContext:
    return StepContext(step_id=name, run_id="test", output_dir=root / name)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shipped dataset split, a tiny Llama built from its words, the training rows tokenized, and
    LoRA adapters trained for 40 steps: shared by the tests of this module."""
    root = tmp_path_factory.mktemp("llm")
    data = lm_data.instruction_dataset(ctx=_ctx(root, "data"))
    base = lm_tiny.tiny_causal_lm(dataset=data["train"], heldout=data["test"], ctx=_ctx(root, "base"))
    tokens = lm_data.tokenize_dataset(dataset=data["train"], model=base["model"], ctx=_ctx(root, "tokens"))
    rows = lm_data.read_tokens(tokens["tokens"])
    result = lm_train.train_lora(Path(base["model"]), rows, root / "adapter", CONFIG)
    return {
        "root": root,
        **data,
        "model": base["model"],
        "tokens": tokens["tokens"],
        "rows": rows,
        "result": result,
    }


def test_the_loss_falls_over_training_steps(prepared: dict[str, Any]) -> None:
    losses = [v for _, v in prepared["result"].losses]
    assert len(losses) == 40 and prepared["result"].steps == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.75 * first, (first, last)
    assert prepared["result"].device == "cpu" and prepared["result"].precision == "fp32"


def test_evaluation_improves_on_the_base_model_and_merging_keeps_the_logits(prepared: dict[str, Any]) -> None:
    root = prepared["root"]
    adapter = str(root / "adapter")
    base = lm_eval.evaluate_lm(
        dataset=prepared["test"], model=prepared["model"], max_rows=20, ctx=_ctx(root, "e0")
    )
    tuned = lm_eval.evaluate_lm(
        dataset=prepared["test"], model=prepared["model"], adapter=adapter, max_rows=20, ctx=_ctx(root, "e1")
    )
    assert tuned["metrics"]["perplexity"] < base["metrics"]["perplexity"]
    assert 0 <= tuned["metrics"]["exact_match"] <= 1 and tuned["metrics"]["rows"] == 20
    assert tuned["report"]["samples"][0]["expected"]
    merged = lm_merge.merge_adapter(adapter=adapter, model=prepared["model"], ctx=_ctx(root, "merge"))
    assert merged["metrics"]["max_logit_difference"] < 1e-3
    # plain transformers, no peft: the exported folder loads and generates
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(merged["model"], local_files_only=True)
    tok = AutoTokenizer.from_pretrained(merged["model"], local_files_only=True)
    ids = tok("Instruction : What is the capital of France ? Response :", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids.shape[1]
    assert tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
    assert not list(Path(merged["model"]).glob("adapter_*"))


def test_a_resumed_run_continues_where_the_checkpoint_left_it(
    prepared: dict[str, Any], tmp_path: Path
) -> None:
    cfg = replace(CONFIG, max_steps=20, fail_at_step=12)
    rows, base, ckpts = prepared["rows"], Path(prepared["model"]), tmp_path / "ckpt"
    with pytest.raises(lm_train.InjectedFailure):
        lm_train.train_lora(base, rows, tmp_path / "a", cfg, ckpts)
    assert [p.name for p in lm_checkpoint.complete(ckpts)] == ["checkpoint-000005", "checkpoint-000010"]
    resumed = lm_train.train_lora(base, rows, tmp_path / "a", cfg, ckpts, first_attempt=False)
    assert resumed.resumed_from == 10 and resumed.steps == 20
    # the same 20 steps as an uninterrupted run: the data order, the optimizer and the adapters came back
    straight = lm_train.train_lora(base, rows, tmp_path / "b", replace(cfg, fail_at_step=0)).losses
    assert [s for s, _ in resumed.losses] == list(range(1, 21))
    for (s, got), (_, want) in zip(resumed.losses[10:], straight[10:], strict=True):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5), s


def test_bad_rows_and_missing_models_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "hi", "output": "there"}\n{"instruction": 3}\n')
    with pytest.raises(LMError, match=r"bad\.jsonl line 2: no text under 'instruction'"):
        lm_data.instruction_dataset(path=str(bad), ctx=_ctx(tmp_path, "d"))
    with pytest.raises(LMError, match="must be an absolute path"):
        lm_data.instruction_dataset(path="relative.jsonl", ctx=_ctx(tmp_path, "d2"))
    with pytest.raises(LMError, match="not a model folder"):
        lm_data.tokenize_dataset(dataset=str(bad), model_path=str(tmp_path), ctx=_ctx(tmp_path, "t"))
    with pytest.raises(LMError, match="no CUDA device"):
        lm_train.train_lora(tmp_path, [], tmp_path / "o", replace(CONFIG, device="cuda"))


def test_the_chat_service_answers_and_refuses_bad_requests(prepared: dict[str, Any]) -> None:
    """serve-causal-lm's app under a real uvicorn server on loopback (the example serves it for real)."""
    import threading

    import httpx
    import uvicorn

    from mlops_nocode.library import lm_serve

    api = lm_serve.app({"model": prepared["model"]}, {"served_name": "tiny", "max_tokens": 4})
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (server.started and server.servers):
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as c:
            assert c.get("/v1/models").json()["data"][0]["id"] == "tiny"
            ok = c.post(
                "/v1/chat/completions", json={"messages": [{"role": "user", "content": "What is 2 plus 2?"}]}
            )
            assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["role"] == "assistant"
            assert ok.json()["usage"]["completion_tokens"] <= 4
            for bad in (
                {"messages": []},
                {"messages": [{"role": "user", "content": "x"}], "max_tokens": 100000},
                {"messages": [{"role": "hacker", "content": "x"}]},
                {"messages": [{"role": "user", "content": "x" * 30000}]},
            ):
                r = c.post("/v1/chat/completions", json=bad)
                assert r.status_code == 422 and r.json()["detail"][0]["loc"], bad
    finally:
        server.should_exit = True
        thread.join(timeout=30)
