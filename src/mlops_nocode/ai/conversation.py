"""Conversation state: the turns of one user's talk with the assistant and its last result. The gateway
keeps conversations in its database (runs/assistant_store.py, one owner each: the API key); the CLI keeps
them under MLOPS_HOME/assistant/ (0600 files). Only redacted text is ever stored."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

ID_RE = re.compile(r"[0-9a-f]{16}")


class ConversationNotFound(LookupError):
    """No conversation with that id belongs to the caller."""


@dataclass
class Conversation:
    """One conversation: whose it is, what it writes, the turns (redacted), the last result."""

    id: str
    owner: str
    kind: str
    messages: list[dict[str, str]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @classmethod
    def new(cls, owner: str, kind: str) -> Conversation:
        return cls(secrets.token_hex(8), owner, kind)


class ConversationStore(Protocol):
    """Where conversations live."""

    def get(self, conversation_id: str, owner: str) -> Conversation:
        """The caller's conversation; ConversationNotFound when it is absent or someone else's."""
        ...

    def put(self, conversation: Conversation) -> None:
        """Create or update it."""
        ...


class FileStore:
    """Conversations as MLOPS_HOME/assistant/conversations/ID.json (mode 0600), for the CLI."""

    def __init__(self, home: Path) -> None:
        self.root = home / "assistant" / "conversations"

    def _path(self, conversation_id: str) -> Path:
        if not ID_RE.fullmatch(conversation_id):
            raise ConversationNotFound(conversation_id[:40])
        return self.root / f"{conversation_id}.json"

    def get(self, conversation_id: str, owner: str) -> Conversation:
        try:
            data = json.loads(self._path(conversation_id).read_text(encoding="utf-8"))
            conv = Conversation(**data)
        except (OSError, ValueError, TypeError):
            raise ConversationNotFound(conversation_id[:40]) from None
        if conv.owner != owner:
            raise ConversationNotFound(conversation_id)
        return conv

    def put(self, conversation: Conversation) -> None:
        conversation.updated_at = time.time()
        path = self._path(conversation.id)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(conversation), fh)
        os.replace(tmp, path)
        (self.root / "last").write_text(conversation.id, encoding="utf-8")

    def last(self) -> str | None:
        """The id of the conversation written last (the CLI's `--continue` without an id)."""
        try:
            text = (self.root / "last").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text if ID_RE.fullmatch(text) else None
