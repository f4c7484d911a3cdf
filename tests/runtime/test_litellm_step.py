"""litellm steps through a real Runner against a real scripted OpenAI-compatible backend on loopback
(tests/fakellm.py stands in for a model): templated prompts, JSON answers validated and repaired,
retries, fallbacks, timeouts and cancel, missing routes and keys, keys never shown, usage metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import SpecError, load_text
from tests.conftest import processes_with
from tests.fakellm import FakeLLM

KEY = "sk-route-key-value-7c1d9e"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    backend = FakeLLM()
    yield backend
    backend.stop()


@pytest.fixture
def fake(llm: FakeLLM) -> FakeLLM:
    llm.reset()
    return llm


@pytest.fixture
def home(tmp_path: Path, llm: FakeLLM) -> Path:
    save_route(tmp_path, ModelRoute(name="chat", model="openai/fake", api_base=llm.url))
    return tmp_path


def playbook(
    section: str, outputs: str = "{answer: {type: text}}", params: str = "{}", extra: str = ""
) -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: ask, version: 1.0.0}}
spec:
  runtime: litellm
  cache: false
  litellm:
{textwrap.indent(textwrap.dedent(section).strip(), "    ")}
  outputs: {outputs}
  parameters: {{type: object, properties: {params}}}
{textwrap.indent(textwrap.dedent(extra).strip(), "  ")}
"""


PIPELINE = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
    - {{id: ask, uses: playbook/ask, with: {with_}}}
"""


def runner(pb: str, home: Path, with_: dict[str, Any] | None = None, **kw: Any) -> tuple[Runner, list[Event]]:
    spec = PIPELINE.format(with_=json.dumps(with_ or {}))
    plan = compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec)))
    events: list[Event] = []
    kw.setdefault("environ", {})
    return Runner(plan, sink=events.append, home=home, **kw), events


def run(pb: str, home: Path, with_: dict[str, Any] | None = None, **kw: Any) -> tuple[RunResult, list[Event]]:
    r, events = runner(pb, home, with_, **kw)
    return r.run(), events


def log_of(events: list[Event]) -> str:
    return "\n".join(str(e.data.get("line")) for e in events if e.type == "log")


CHAT = """
model: chat
messages:
  - {role: system, content: "You are terse."}
  - {role: user, content: "Topic: ${{ params.topic }}; n=${{ params.n }}"}
temperature: 0.2
max_tokens: 50
outputs: {answer: text, usage: metrics}
"""
USAGE_OUT = "{answer: {type: text}, usage: {type: metrics}}"


def test_templated_prompt_arrives_as_sent_and_usage_is_recorded(fake: FakeLLM, home: Path) -> None:
    pb = playbook(CHAT, USAGE_OUT, "{topic: {type: string}, n: {type: integer}}")
    hostile = 'x"}], "model": "other\n{{ n }}'
    r, events = run(pb, home, {"topic": hostile, "n": 3})
    assert r.status == "succeeded", r.summary()
    body = fake.requests()[-1]["body"]
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"Topic: {hostile}; n=3"},  # sent as is, inside its message
    ]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50
    assert r.steps["ask"].outputs["answer"]["value"] == f"echo: Topic: {hostile}; n=3"
    usage = r.steps["ask"].outputs["usage"]["value"]
    assert (
        usage["prompt_tokens"] > 0
        and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    )
    finished = next(e for e in events if e.type == "step.finished")
    assert finished.data["metrics"]["usage"]["total_tokens"] == usage["total_tokens"]
    per_call = [e.data for e in events if e.type == "metric" and e.data["name"] == "total_tokens"]
    assert per_call == [
        {"name": "total_tokens", "value": usage["total_tokens"], "labels": {"call": "1", "route": "chat"}}
    ]
    assert "route 'chat' answered after 1 attempt(s)" in log_of(events)


SCHEMA = (
    "{type: object, properties: {score: {type: number, minimum: 0, maximum: 1}, reasoning: {type: string}}, "
    "required: [score, reasoning]}"
)
HI = "messages: [{role: user, content: hi}]"
JUDGE = f"""
model: chat
messages: [{{role: user, content: "Score it"}}]
json_schema: {SCHEMA}
retries: 1
backoff: 0
outputs: {{verdict: json, scores: metrics}}
"""
JUDGE_OUT = "{verdict: {type: json}, scores: {type: metrics}}"


def test_json_schema_answer_is_parsed_and_its_numbers_are_metrics(fake: FakeLLM, home: Path) -> None:
    fake.script(chat=[{"content": '```json\n{"score": 0.75, "reasoning": "fine"}\n```'}])
    r, _ = run(playbook(JUDGE, JUDGE_OUT), home)
    assert r.status == "succeeded", r.summary()
    assert r.steps["ask"].outputs["verdict"]["value"] == {"score": 0.75, "reasoning": "fine"}
    assert r.steps["ask"].outputs["scores"]["value"]["score"] == 0.75
    body = fake.requests()[-1]["body"]
    assert body["response_format"] == {"type": "json_object"}  # the route is not known to take a schema
    assert '"maximum": 1' in body["messages"][0]["content"]  # so the schema is in the system message


def test_native_json_schema_when_the_route_supports_it(fake: FakeLLM, home: Path, llm: FakeLLM) -> None:
    save_route(
        home, ModelRoute(name="chat", model="openai/fake", api_base=llm.url, supports_json_schema=True)
    )
    fake.script(chat=[{"json": {"score": 1, "reasoning": "ok"}}])
    r, _ = run(playbook(JUDGE, JUDGE_OUT), home)
    assert r.status == "succeeded", r.summary()
    fmt = fake.requests()[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["required"] == ["score", "reasoning"]


def test_an_invalid_answer_is_repaired_with_its_reason(fake: FakeLLM, home: Path) -> None:
    fake.script(chat=[{"json": {"score": 7, "reasoning": "hi"}}, {"json": {"score": 0.5, "reasoning": "ok"}}])
    r, events = run(playbook(JUDGE, JUDGE_OUT), home)
    assert r.status == "succeeded", r.summary()
    repair = fake.requests()[-1]["body"]["messages"][-1]["content"]
    assert "does not match json_schema at $.score: 7 is greater than the maximum of 1" in repair
    assert r.steps["ask"].outputs["scores"]["value"]["score"] == 0.5
    assert r.steps["ask"].outputs["scores"]["value"]["total_tokens"] > 0  # summed over both calls
    assert len([e for e in events if e.type == "metric" and e.data["name"] == "total_tokens"]) == 2


def test_an_answer_that_stays_invalid_fails_precisely(fake: FakeLLM, home: Path) -> None:
    fake.script(chat=[{"content": "I think it is good"}, {"content": "{not json"}])
    r, events = run(playbook(JUDGE, JUDGE_OUT), home)
    assert r.status == "failed"
    error = r.steps["ask"].error or ""
    assert (
        "the model's answer is not JSON (Expecting property name enclosed in double quotes at line 1" in error
    )
    assert "after 2 tries" in error
    assert "I think it is good" in log_of(events)


def test_429_then_success_is_retried(fake: FakeLLM, home: Path) -> None:
    fake.script(chat=[{"status": 429, "error": "slow down"}, {"content": "done"}])
    r, events = run(
        playbook(CHAT.replace("temperature: 0.2", "backoff: 0"), USAGE_OUT, "{topic: {}, n: {}}"), home
    )
    assert r.status == "succeeded", r.summary()
    assert r.steps["ask"].outputs["answer"]["value"] == "done"
    assert "RateLimitError" in log_of(events) and "answered after 2 attempt(s)" in log_of(events)


def test_500_on_the_route_then_a_fallback_answers(fake: FakeLLM, home: Path, llm: FakeLLM) -> None:
    save_route(home, ModelRoute(name="backup", model="openai/backup-model", api_base=llm.url))
    fake.script(chat=[{"status": 500, "error": "boom"}])
    section = f"model: chat\nfallbacks: [backup]\nretries: 0\n{HI}\noutputs: {{answer: text}}"
    r, events = run(playbook(section), home)
    assert r.status == "succeeded", r.summary()
    assert [q["body"]["model"] for q in fake.requests()] == ["fake", "backup-model"]
    assert "route 'backup' (a fallback) answered" in log_of(events)


def test_an_unknown_route_fails_naming_the_configured_ones(fake: FakeLLM, home: Path) -> None:
    section = "model: '${{ params.model }}'\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}"
    r, _ = run(playbook(section, params="{model: {type: string}}"), home, {"model": "nope"})
    assert r.status == "failed"
    assert "no model route 'nope' (configured: chat)" in (r.steps["ask"].error or "")
    assert fake.requests() == []


def test_a_missing_key_secret_fails_before_any_call(fake: FakeLLM, home: Path, llm: FakeLLM) -> None:
    save_route(home, ModelRoute(name="chat", model="openai/fake", api_base=llm.url, api_key_secret="LLM_KEY"))
    r, _ = run(playbook("model: chat\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}"), home)
    assert r.status == "failed"
    assert "model route 'chat' needs secret 'LLM_KEY', which is not set" in (r.steps["ask"].error or "")
    assert fake.requests() == []


def test_the_key_is_sent_but_never_shown(tmp_path: Path) -> None:
    keyed = FakeLLM(api_key=KEY)
    try:
        save_route(
            tmp_path,
            ModelRoute(name="chat", model="openai/fake", api_base=keyed.url, api_key_secret="LLM_KEY"),
        )
        keyed.script(chat=[{"status": 500, "error": f"bad key {KEY}"}, {"content": f"your key is {KEY}"}])
        section = "model: chat\nbackoff: 0\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}"
        r, events = run(playbook(section), tmp_path, environ={"LLM_KEY": KEY})
        assert r.status == "succeeded", r.summary()
        assert keyed.requests()[-1]["authorization"]
        assert r.steps["ask"].outputs["answer"]["value"] == "your key is ***"
        files = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
        everything = json.dumps([e.data for e in events]) + files + json.dumps(r.summary())
        assert KEY not in everything
        assert "bad key ***" in log_of(events)
    finally:
        keyed.stop()


def _llm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("llm call", "step ask#"))]


def _wait_no_threads(deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while _llm_threads():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_slow_answer_meets_the_step_timeout(fake: FakeLLM, home: Path) -> None:
    fake.script(chat=[{"delay": 4, "content": "late"}])
    section = (
        "model: chat\ntimeout: 3\nretries: 0\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}"
    )
    started = time.monotonic()
    r, _ = run(playbook(section, extra="timeout: 1s"), home)
    assert r.status == "failed"
    assert "timed out after 1s" in (r.steps["ask"].error or "")
    assert time.monotonic() - started < 3.5  # the Runner did not wait for the call
    assert _wait_no_threads(15), _llm_threads()  # the abandoned call ends by its own timeout


def test_cancel_stops_waiting_for_the_model(fake: FakeLLM, home: Path) -> None:
    fake.script(chat=[{"delay": 4, "content": "late"}])
    section = (
        "model: chat\ntimeout: 3\nretries: 0\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}"
    )
    r, _ = runner(playbook(section), home)
    result: list[RunResult] = []
    t = threading.Thread(target=lambda: result.append(r.run()))
    t.start()
    deadline = time.monotonic() + 30
    while not fake.requests():
        assert time.monotonic() < deadline, "the call never reached the backend"
        time.sleep(0.05)
    r.cancel()
    t.join(30)
    assert result and result[0].status == "cancelled"
    assert _wait_no_threads(15), _llm_threads()


def test_embeddings_as_json_and_as_a_dataset(fake: FakeLLM, home: Path, llm: FakeLLM) -> None:
    import pandas as pd

    save_route(home, ModelRoute(name="emb", model="openai/embedder", kind="embedding", api_base=llm.url))
    section = (
        "mode: embedding\nmodel: emb\ninput: '${{ params.texts }}'\n"
        "outputs: {vectors: embeddings, table: embeddings, usage: metrics}"
    )
    outputs = "{vectors: {type: json}, table: {type: dataset}, usage: {type: metrics}}"
    r, _ = run(
        playbook(section, outputs, "{texts: {type: array}}"), home, {"texts": ["red apple", "blue sky"]}
    )
    assert r.status == "succeeded", r.summary()
    vectors = r.steps["ask"].outputs["vectors"]["value"]
    assert len(vectors) == 2 and len(vectors[0]) == 64
    frame = pd.read_parquet(r.steps["ask"].outputs["table"]["path"])
    assert list(frame["text"]) == ["red apple", "blue sky"]
    assert fake.requests()[-1]["body"]["input"] == ["red apple", "blue sky"]


def test_a_file_input_feeds_the_prompt_within_its_cap(
    fake: FakeLLM, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: make, version: 1.0.0}
spec:
  runtime: python
  python:
    code: |
      def main(ctx, size):
          p = ctx.output_dir / "doc.txt"
          p.write_text("w " * size)
          return {"doc": str(p)}
    entrypoint: main
  parameters: {type: object, properties: {size: {type: integer}}}
  outputs: {doc: {type: file}}
"""
    pb = playbook(
        "model: chat\nmessages: [{role: user, content: 'Read: ${{ inputs.doc }}'}]\noutputs: {answer: text}",
        extra="inputs: {doc: {type: file}}",
    )
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  parameters: {type: object, properties: {size: {type: integer}}}
  steps:
    - {id: make, uses: playbook/make, with: {size: "${{ params.size }}"}}
    - {id: ask, uses: playbook/ask, inputs: {doc: make.doc}}
"""
    index = Index(load_text(producer) + load_text(pb) + load_text(spec))
    ok = Runner(compile_plan("pipeline/t", index, {"size": 3}), home=home, environ={}).run()
    assert ok.status == "succeeded", ok.summary()
    assert fake.requests()[-1]["body"]["messages"][0]["content"] == "Read: w w w "
    monkeypatch.setenv("LLM_STEP_INPUT_MAX_BYTES", "100")
    big = Runner(compile_plan("pipeline/t", index, {"size": 60}), home=home, environ={}).run()
    assert big.status == "failed"
    assert "input 'doc' is larger than LLM_STEP_INPUT_MAX_BYTES (100 bytes)" in (big.steps["ask"].error or "")


def test_without_the_litellm_package_the_step_says_what_to_install(home: Path) -> None:
    pb = playbook("model: chat\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}")
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["litellm"] = None  # as if the llm extra were not installed
        from mlops_nocode.catalogue import Index
        from mlops_nocode.compiler import compile_plan
        from mlops_nocode.runtime.runner import Runner
        from mlops_nocode.spec import load_text
        from pathlib import Path
        pb, spec = {pb!r}, {PIPELINE.format(with_="{}")!r}
        plan = compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec)))
        r = Runner(plan, home=Path({str(home)!r}), environ={{}}).run()
        print(json.dumps({{"status": r.status, "error": r.steps["ask"].error}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["status"] == "failed"
    assert "pip install 'mlops-nocode[llm]'" in got["error"]


@pytest.mark.parametrize(
    ("section", "outputs", "extra", "expected"),
    [
        ("model: chat\noutputs: {answer: text}", "{answer: {type: text}}", "", "mode chat needs `messages`"),
        (
            "model: chat\nprompt: hi\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}",
            "{answer: {type: text}}",
            "",
            "`prompt` is not used in mode chat",
        ),
        (
            "model: chat\nmessages: [{role: user, content: '${{ inputs.ghost }}'}]\noutputs: {answer: text}",
            "{answer: {type: text}}",
            "",
            "'${{ inputs.ghost }}' names no input",
        ),
        (
            "model: chat\nmessages: [{role: user, content: '${{ secrets.TOKEN }}'}]\noutputs: {answer: text}",
            "{answer: {type: text}}",
            "",
            "unsupported expression '${{ secrets.TOKEN }}'",
        ),
        (
            "model: chat\nmessages: [{role: user, content: '${{ inputs.d }}'}]\noutputs: {answer: text}",
            "{answer: {type: text}}",
            "inputs: {d: {type: dataset}}",
            "input 'd' is a dataset",
        ),
        (
            f"model: chat\n{HI}\njson_schema: {{type: object, properties: {{a: {{type: 7}}}}}}\n"
            "outputs: {answer: json}",
            "{answer: {type: json}}",
            "",
            "not a valid JSON Schema",
        ),
        (
            f"model: chat\n{HI}\njson_schema: {{type: array}}\noutputs: {{answer: json}}",
            "{answer: {type: json}}",
            "",
            "the schema's root must be `type: object`",
        ),
        (
            "model: chat\nmessages: [{role: user, content: hi}]\noutputs: {answer: json}",
            "{answer: {type: dataset}}",
            "",
            "output 'answer' is a dataset, which cannot hold the json",
        ),
        (
            "model: chat\nmessages: [{role: user, content: hi}]\noutputs: {answer: embeddings}",
            "{answer: {type: json}}",
            "",
            "mode chat gives no embeddings",
        ),
        (
            "model: chat\nmessages: [{role: user, content: hi}]\noutputs: {}",
            "{answer: {type: text}}",
            "",
            "output 'answer' is never filled",
        ),
        (
            "model: 'bad route!'\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}",
            "{answer: {type: text}}",
            "",
            "is neither a model route name",
        ),
        (
            "model: chat\ntemperature: 9\nmessages: [{role: user, content: hi}]\noutputs: {answer: text}",
            "{answer: {type: text}}",
            "",
            "temperature 9.0 is out of range",
        ),
        (
            "mode: embedding\nmodel: emb\ninput: 'a ${{ params.t }}'\noutputs: {v: embeddings}",
            "{v: {type: json}}",
            "",
            "mixes an expression with other text",
        ),
    ],
)
def test_validate_time_problems_are_located(section: str, outputs: str, extra: str, expected: str) -> None:
    pb = playbook(section, outputs, "{t: {type: string}}", extra)
    spec = PIPELINE.format(with_="{}")
    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec)))
    assert expected in str(e.value)
    assert "playbook/ask@1.0.0 > spec." in str(e.value)


def test_a_completion_prompt_is_sent_as_a_prompt(fake: FakeLLM, home: Path, llm: FakeLLM) -> None:
    save_route(
        home,
        ModelRoute(name="text", model="text-completion-openai/fake", kind="completion", api_base=llm.url),
    )
    section = (
        "mode: completion\nmodel: text\nprompt: 'Continue: ${{ params.start }}'\noutputs: {answer: text}"
    )
    r, _ = run(playbook(section, params="{start: {type: string}}"), home, {"start": "once upon"})
    assert r.status == "succeeded", r.summary()
    assert fake.requests()[-1]["path"].endswith("/completions")
    assert fake.requests()[-1]["body"]["prompt"] in ("Continue: once upon", ["Continue: once upon"])
    assert r.steps["ask"].outputs["answer"]["value"] == "echo: Continue: once upon"


def test_a_cached_answer_is_not_reused_once_the_route_changes(
    fake: FakeLLM, home: Path, llm: FakeLLM
) -> None:
    pb = playbook(f"model: chat\n{HI}\noutputs: {{answer: text}}").replace("cache: false", "cache: true")
    first, _ = run(pb, home)
    again, _ = run(pb, home)
    assert first.status == again.status == "succeeded"
    assert again.steps["ask"].cached and len(fake.requests()) == 1
    save_route(home, ModelRoute(name="chat", model="openai/other-model", api_base=llm.url))
    changed, _ = run(pb, home)
    assert not changed.steps["ask"].cached
    assert [q["body"]["model"] for q in fake.requests()] == ["fake", "other-model"]


PROXY_KEY = "sk-proxy-master-key-5e0b7c44d1"


@pytest.fixture(scope="module")
def proxy(llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real LiteLLM proxy (the pinned `litellm[proxy]`) whose model `chat` is the scripted backend."""
    import os

    import httpx

    from tests.fakellm import free_port

    folder = tmp_path_factory.mktemp("proxy")
    config = folder / "config.yaml"
    model = {"model": "openai/fake", "api_base": llm.url, "api_key": "sk-backend-unused"}
    config.write_text(json.dumps({"model_list": [{"model_name": "chat", "litellm_params": model}]}))
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": PROXY_KEY}
    argv = [str(Path(sys.executable).with_name("litellm")), "--config", str(config), "--port", str(port)]
    argv += ["--host", "127.0.0.1"]
    log = open(folder / "proxy.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (folder / "proxy.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the LiteLLM proxy did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_through_the_proxy_when_one_is_configured(fake: FakeLLM, home: Path, proxy: str) -> None:
    fake.script(chat=[{"content": f"proxied, key {PROXY_KEY}"}])
    environ = {"LITELLM_PROXY_URL": proxy, "LITELLM_PROXY_KEY": PROXY_KEY}
    r, events = run(playbook(f"model: chat\n{HI}\noutputs: {{answer: text}}"), home, environ=environ)
    assert r.status == "succeeded", r.summary()
    assert r.steps["ask"].outputs["answer"]["value"] == "proxied, key ***"  # the proxy key is redacted
    assert f"through the LiteLLM proxy at {proxy}" in log_of(events)
    assert fake.requests()[-1]["body"]["model"] == "fake"  # the proxy mapped route `chat` to the backend
    assert PROXY_KEY not in json.dumps([e.data for e in events])


@pytest.mark.parametrize(
    "model", ["../../etc/passwd", "chat\nX-Injected: 1", "chat; rm -rf /", "", "a" * 300]
)
def test_a_hostile_route_parameter_is_refused_before_any_call(fake: FakeLLM, home: Path, model: str) -> None:
    section = f"model: '${{{{ params.model }}}}'\n{HI}\noutputs: {{answer: text}}"
    r, _ = run(playbook(section, params="{model: {type: string}}"), home, {"model": model})
    assert r.status == "failed"
    assert "is not a model route name" in (r.steps["ask"].error or "")
    assert fake.requests() == []


def test_a_route_of_another_kind_is_refused(fake: FakeLLM, home: Path, llm: FakeLLM) -> None:
    save_route(home, ModelRoute(name="emb", model="openai/embedder", kind="embedding", api_base=llm.url))
    r, _ = run(playbook(f"model: emb\n{HI}\noutputs: {{answer: text}}"), home)
    assert r.status == "failed"
    assert "model route 'emb' is a embedding route, not chat" in (r.steps["ask"].error or "")


def test_a_key_echoed_by_the_model_never_reaches_the_log_file(tmp_path: Path) -> None:
    keyed = FakeLLM(api_key=KEY)
    try:
        save_route(
            tmp_path, ModelRoute(name="chat", model="openai/fake", api_base=keyed.url, api_key_secret="K")
        )
        late = {"delay": 3, "json": {"score": 1, "reasoning": "ok"}}
        keyed.script(chat=[{"content": f"not json, key {KEY}"}, late])
        r, _ = runner(playbook(JUDGE, JUDGE_OUT), tmp_path, environ={"K": KEY})
        t = threading.Thread(target=r.run)
        t.start()
        deadline = time.monotonic() + 30
        seen = ""
        while "asking again" not in seen:  # read while the repair call is pending: before the Runner redacts
            assert time.monotonic() < deadline, "no repair was logged"
            seen = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.log"))
            time.sleep(0.05)
        assert "not json, key ***" in seen and KEY not in seen
        t.join(30)
    finally:
        keyed.stop()


def test_cost_from_the_route_prices_is_a_metric(fake: FakeLLM, home: Path, llm: FakeLLM) -> None:
    priced = ModelRoute(
        name="chat",
        model="openai/fake",
        api_base=llm.url,
        input_cost_per_token=0.001,
        output_cost_per_token=0.002,
    )
    save_route(home, priced)
    r, events = run(playbook(CHAT.replace("temperature: 0.2", ""), USAGE_OUT, "{topic: {}, n: {}}"), home)
    assert r.status == "succeeded", r.summary()
    usage = r.steps["ask"].outputs["usage"]["value"]
    expected = 0.001 * usage["prompt_tokens"] + 0.002 * usage["completion_tokens"]
    assert usage["cost_usd"] == pytest.approx(expected)
    assert any(e.type == "metric" and e.data["name"] == "cost_usd" for e in events)
    assert "$0.0" in log_of(events)


def test_through_the_proxy_that_mlops_llm_up_recorded(fake: FakeLLM, home: Path, proxy: str) -> None:
    port = proxy.rsplit(":", 1)[1]
    [proc] = [
        p for p in processes_with(f"--port {port} --host 127.0.0.1") if "litellm" in " ".join(p.cmdline())
    ]
    state = {"url": proxy, "pid": proc.pid, "port": int(port), "caller_key": PROXY_KEY, "caller_key_id": "k",
             "started": 0.0, "log": "", "config": ""}  # fmt: skip
    (home / "llm" / "proxy.json").write_text(json.dumps(state))
    r, events = run(playbook(f"model: chat\n{HI}\noutputs: {{answer: text}}"), home)
    assert r.status == "succeeded", r.summary()
    assert f"through the LiteLLM proxy at {proxy}" in log_of(events)
    assert fake.requests()[-1]["body"]["model"] == "fake"
