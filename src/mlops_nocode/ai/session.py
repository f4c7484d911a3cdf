"""One turn of a conversation (what the CLI and the gateway share): load the caller's conversation, ask
the assistant with its earlier turns, store the redacted turn and the result; and what a confirmed save
takes from a conversation."""

from __future__ import annotations

import json
from collections.abc import Callable

from mlops_nocode.ai.assistant import Assistant, Model, Result
from mlops_nocode.ai.conversation import Conversation, ConversationStore
from mlops_nocode.ai.guard import Mode
from mlops_nocode.ai.settings import AssistantSettings
from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.spec import Problem, SpecError, load_text
from mlops_nocode.spec.yamlio import parse_texts

MAX_PROMPT_CHARS = 8000
MAX_STORED_MESSAGES = 40  # a conversation keeps its last 20 turns (what the model sees is fewer)


def check_prompt(prompt: str, where: str = "prompt") -> None:
    """A request the assistant can take: not empty, at most MAX_PROMPT_CHARS."""
    if not prompt.strip():
        raise SpecError(Problem("the request is empty", where, "describe the pipeline you want"))
    if len(prompt) > MAX_PROMPT_CHARS:
        raise SpecError(
            Problem(f"the request has {len(prompt)} characters", where, f"keep it under {MAX_PROMPT_CHARS}")
        )


def turn(
    assistant: Assistant,
    store: ConversationStore,
    owner: str,
    prompt: str,
    mode: Mode,
    conversation_id: str | None = None,
    redact: Callable[[str], str] = lambda t: t,
) -> tuple[Conversation, Result]:
    """Ask once (with repairs) inside the caller's conversation (a new one without an id)."""
    check_prompt(prompt)
    conv = store.get(conversation_id, owner) if conversation_id else Conversation.new(owner, mode)
    if conv.kind != mode:
        raise SpecError(
            Problem(f"conversation {conv.id} writes a {conv.kind}", "kind", "start a new conversation")
        )
    keep = assistant.settings.history_turns * 2
    history = conv.messages[-keep:] if keep else []
    result = assistant.write(prompt, mode, history)
    answer = (
        result.yaml
        if result.valid
        else "(no valid spec: " + "; ".join(p.what for p in result.problems[:5]) + ")"
    )
    conv.messages += [
        {"role": "user", "content": redact(prompt)},
        {"role": "assistant", "content": redact(answer)},
    ]
    conv.messages = conv.messages[-MAX_STORED_MESSAGES:]
    redacted(result, redact)
    conv.result = result.to_json()
    store.put(conv)
    return conv, result


def redacted(result: Result, redact: Callable[[str], str]) -> None:
    """Every secret value out of a result (in place): the spec is read back from the redacted YAML, so
    what is shown, stored and saved are the same text."""
    yaml_text = redact(result.yaml)
    if yaml_text != result.yaml and result.spec is not None:
        result.spec = parse_texts(yaml_text, "answer")[0]
    result.yaml, result.diff = yaml_text, redact(result.diff)
    result.problems = [Problem(redact(p.what), redact(p.where), redact(p.fix)) for p in result.problems]
    result.warnings = [Problem(redact(p.what), redact(p.where), redact(p.fix)) for p in result.warnings]
    result.notes = [redact(n) for n in result.notes]
    if result.tried is not None:
        try:
            result.tried = json.loads(redact(json.dumps(result.tried)))
        except ValueError:
            result.tried = {"status": result.tried.get("status"), "outputs": "(withheld: held a secret)"}


def to_save(conv: Conversation) -> tuple[Doc, str]:
    """The document a confirmed save stores: the conversation's last result, which must be valid."""
    result = conv.result
    if not result or not result.get("valid") or not result.get("yaml"):
        raise SpecError(
            Problem(
                f"conversation {conv.id} has no valid spec to save",
                "conversation",
                "ask again until the result is valid, then save",
            )
        )
    text = str(result["yaml"])
    docs = load_text(text, "conversation")
    return docs[0], text


def stored_text(catalogues: object) -> Callable[[Doc], str | None]:
    """How the diff reads an entry's stored text from a `Catalogues` (None when it cannot)."""
    from mlops_nocode.catalogue.service import Catalogues
    from mlops_nocode.spec.refs import KIND_OF_DOC, Ref

    assert isinstance(catalogues, Catalogues)

    def text(doc: Doc) -> str | None:
        ref = Ref.parse(f"{KIND_OF_DOC[doc.kind]}/{doc.metadata.name}@{doc.metadata.version}")
        try:
            repo, version = catalogues.find(ref)
            entry = repo.entry(ref.kind, ref.name)
            return None if entry is None else repo.text_at(entry, version)
        except SpecError:
            return None

    return text


def build(
    resolver: Resolver, model: Model, settings: AssistantSettings, catalogues: object = None
) -> Assistant:
    """The assistant as the CLI and the gateway run it: placement checked as `mlops validate` does,
    written playbooks tried in a scratch MLOPS_HOME, diffs against the stored text."""
    from mlops_nocode.ai.tryrun import try_playbook
    from mlops_nocode.providers.placement import placement_problems

    return Assistant(
        resolver,
        model,
        settings,
        placement=placement_problems,
        trier=lambda g: try_playbook(g, settings.try_timeout),
        stored=stored_text(catalogues) if catalogues is not None else None,
    )
