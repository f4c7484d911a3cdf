"""The gateway's assistant conversations (table assistant_conversations): each belongs to the API key
that started it; another key asking for it is told it does not exist."""

from __future__ import annotations

import time

from mlops_nocode.ai.conversation import ID_RE, Conversation, ConversationNotFound
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.models import AssistantConversationRow


class DbConversationStore:
    """Conversations in the gateway's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, conversation_id: str, owner: str) -> Conversation:
        if not ID_RE.fullmatch(conversation_id):
            raise ConversationNotFound(conversation_id[:40])
        with self.db.session() as s:
            row = s.get(AssistantConversationRow, conversation_id)
            if row is None or row.owner != owner:
                raise ConversationNotFound(conversation_id)
            return Conversation(
                row.id, row.owner, row.kind, list(row.messages or []), row.result, row.created_at,
                row.updated_at,
            )  # fmt: skip

    def put(self, conversation: Conversation) -> None:
        conversation.updated_at = time.time()
        c = conversation
        with self.db.session() as s:
            row = s.get(AssistantConversationRow, c.id)
            if row is None:
                s.add(
                    AssistantConversationRow(
                        id=c.id, owner=c.owner, kind=c.kind, messages=c.messages, result=c.result,
                        created_at=c.created_at, updated_at=c.updated_at,
                    )
                )  # fmt: skip
                return
            if row.owner != c.owner:
                raise ConversationNotFound(c.id)
            row.messages, row.result, row.updated_at = list(c.messages), c.result, c.updated_at
