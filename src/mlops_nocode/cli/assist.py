"""`mlops assist "..."`: the AI assistant writes a pipeline (or, with --playbook, a playbook with its
code), validated by the compiler; it shows the spec, the validation and the diff, and saves into the
catalogue only when asked (--save) and confirmed (or --yes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from mlops_nocode.cli.report import call, err, fail, out, warn
from mlops_nocode.spec import Problem, SpecError

if TYPE_CHECKING:
    from rich.syntax import Syntax

    from mlops_nocode.ai.assistant import Result
    from mlops_nocode.ai.conversation import Conversation
    from mlops_nocode.catalogue.service import Catalogues

OWNER = "cli"
PromptArg = Annotated[str | None, typer.Argument(help="What you want, in words")]
PlaybookOpt = Annotated[
    bool, typer.Option("--playbook", help="Write a playbook (spec + Python code), tried once on samples")
]
SaveOpt = Annotated[bool, typer.Option("--save", help="Offer to save the valid result into the catalogue")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="With --save: save without asking")]
ContinueOpt = Annotated[
    str | None,
    typer.Option("--continue", help="Continue a conversation (its id, or 'last'); with --save and no prompt: "
                 "save its last result"),
]  # fmt: skip
CatOpt = Annotated[list[str] | None, typer.Option("--catalogue", "-c", help="Extra catalogue file or folder")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


def _syntax(text: str, lexer: str) -> Syntax:
    from rich.syntax import Syntax  # pygments: imported when a spec is shown, not at every `mlops` start

    return Syntax(text, lexer, theme="ansi_dark", background_color="default")


def _show(result: Result, conv_id: str) -> None:
    if result.yaml:
        out.print(_syntax(result.yaml, "yaml"))
    for note in result.notes:
        err.print(f"[cyan]i[/] {escape(note)}", highlight=False)
    if result.valid:
        tried = " and ran once on its samples" if result.tried else ""
        err.print(f"[green]✓[/] {escape(str(result.ref))} is valid{tried} ({result.repairs} repair(s))")
        warn(result.warnings)
    else:
        err.print(f"[red bold]✗ no valid spec after {result.repairs} repair(s)[/]")
        for p in result.problems[:25]:
            err.print(f"  [bold]{escape(p.where or 'answer')}[/]: {escape(p.what)}", highlight=False)
            if p.fix:
                err.print(f"    fix: {escape(p.fix)}", highlight=False)
    if result.diff:
        err.print("[bold]diff against the catalogue:[/]")
        out.print(_syntax(result.diff, "diff"))
    elif result.valid:
        err.print("[dim]new entry: nothing of that name in the catalogue[/]")
    err.print(f"[dim]conversation {conv_id}: continue it with --continue {conv_id}[/]")


def _model_failed(e: Exception, as_json: bool) -> NoReturn:
    from mlops_nocode.integrations.litellm.routes import RouteError

    if isinstance(e, RouteError):
        fix = "add a chat route of that name to MLOPS_HOME/llm/routes.yaml, or set ASSISTANT_MODEL to one"
        fail([Problem(str(e), "ASSISTANT_MODEL", fix)], as_json)
    fail(
        [Problem(f"the model did not answer: {e}", "ASSISTANT_MODEL", "check the route, then retry")], as_json
    )


def _ask(prompt: str, mode: str, conv_id: str | None, cats: Catalogues, extra: list[str]) -> tuple[Any, Any]:
    from mlops_nocode.ai.conversation import FileStore
    from mlops_nocode.ai.model import route_model, route_secret_names
    from mlops_nocode.ai.session import build, turn
    from mlops_nocode.ai.settings import AssistantSettings
    from mlops_nocode.catalogue import load_folder
    from mlops_nocode.catalogue.home import mlops_home
    from mlops_nocode.runtime.redaction import redactor_for

    home, settings, environ = mlops_home(), AssistantSettings(), dict(os.environ)
    docs = load_folder([Path(c) for c in extra]) if extra else []
    names = route_secret_names(home, settings)  # provider keys come from the environment, as for `mlops run`
    model = route_model(home, settings, lambda ns: {n: environ[n] for n in ns if n in environ}, environ)
    assistant = build(cats.resolver(docs or None), model, settings, cats)
    assistant.redact = redactor_for(environ[n] for n in names if n in environ).text
    return turn(assistant, FileStore(home), OWNER, prompt, mode, conv_id, assistant.redact)  # type: ignore[arg-type]


def _save(conv: Conversation, yes: bool, as_json: bool, cats: Catalogues) -> None:
    from mlops_nocode.ai.session import to_save

    doc, text = to_save(conv)
    if not yes and not typer.confirm(f"Save {doc.ref} into the catalogue?", default=False, err=True):
        err.print("[yellow]not saved[/]")
        raise typer.Exit(1)
    asked = next((m["content"] for m in reversed(conv.messages) if m["role"] == "user"), "")
    message = f"assistant: {' '.join(asked.split())[:72]}\n\nConversation: {conv.id}"
    saved = call(lambda: cats.save([(doc, text)], message=message), as_json)
    if as_json:
        print(json.dumps({"status": "saved", "conversation": conv.id, "saved": [s.to_json() for s in saved]}))
        return
    for s in saved:
        err.print(f"[green]✓[/] saved {s.ref} in {s.repo} ({s.commit[:12]})")


def assist(
    prompt: PromptArg = None,
    playbook: PlaybookOpt = False,
    save: SaveOpt = False,
    yes: YesOpt = False,
    cont: ContinueOpt = None,
    catalogue: CatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Have the AI assistant write a pipeline (or --playbook) from the catalogue; nothing is saved
    without --save and a confirmation. Model: the route named by ASSISTANT_MODEL (default `assistant`)."""
    from mlops_nocode.ai.assistant import Result
    from mlops_nocode.ai.conversation import ConversationNotFound, FileStore
    from mlops_nocode.catalogue.home import mlops_home
    from mlops_nocode.catalogue.service import Catalogues
    from mlops_nocode.compiler.check import check_doc
    from mlops_nocode.integrations.litellm.client import LitellmMissing, ModelCallError
    from mlops_nocode.integrations.litellm.routes import RouteError

    store = FileStore(mlops_home())
    conv_id = store.last() if cont == "last" else cont
    if cont == "last" and conv_id is None:
        fail([Problem("no earlier conversation", "--continue", 'start one: mlops assist "..."')], as_json)
    try:
        cats = Catalogues.configured(check_doc)
        if prompt is None:
            if not (save and conv_id):
                raise SpecError(Problem("no request given", "PROMPT", "describe what you want in words"))
            conv = store.get(conv_id, OWNER)
            result = Result.from_json(conv.result or {"kind": conv.kind, "valid": False})
        else:
            conv, result = _ask(
                prompt, "playbook" if playbook else "pipeline", conv_id, cats, catalogue or []
            )
    except ConversationNotFound:
        fail(
            [Problem(f"no conversation {conv_id!r}", "--continue", "give an id mlops assist printed")],
            as_json,
        )
    except (RouteError, ModelCallError, LitellmMissing) as e:
        _model_failed(e, as_json)
    except SpecError as e:
        fail(e.problems, as_json)
    if as_json and not (save and result.valid):
        print(json.dumps({"conversation": conv.id, **result.to_json()}, indent=2))
    elif not as_json:
        _show(result, conv.id)
    if not result.valid:
        raise typer.Exit(2)
    if save:
        _save(conv, yes, as_json, cats)
    elif not as_json:
        err.print(f"[dim]nothing saved: to save it, mlops assist --continue {conv.id} --save[/]")
