"""The one error type of the spec and compiler layers: a list of located problems."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a spec: what is wrong, where, and how to fix it."""

    what: str
    where: str = ""
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}\n  fix: {self.fix}" if self.fix else text


class SpecError(Exception):
    """Raised with every problem found; nothing has been written or run when it is raised."""

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def to_json(self) -> list[dict[str, str]]:
        return [{"what": p.what, "where": p.where, "fix": p.fix} for p in self.problems]
