"""References between specs: `playbook/NAME@VERSION`, `pipeline/NAME`, `metapipeline/NAME@^1.2`."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal, cast

import semver

Kind = Literal["playbook", "pipeline", "metapipeline"]
KINDS: tuple[Kind, ...] = ("playbook", "pipeline", "metapipeline")
KIND_OF_DOC: dict[str, Kind] = {
    "Playbook": "playbook",
    "Pipeline": "pipeline",
    "MetaPipeline": "metapipeline",
}

NAME_PATTERN = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
"""A DNS-1123 label, unanchored (anchor it with ^...$ or use fullmatch)."""
NAME_RE = re.compile(f"^{NAME_PATTERN}$")
_REF_RE = re.compile(r"^(?P<kind>[a-z]+)/(?P<name>[^@\s]+)(@(?P<version>\S+))?$")
_PARTIAL_RE = re.compile(r"^(?P<major>\d+)(\.(?P<minor>\d+))?(\.(?P<patch>\d+))?$")


class RefError(ValueError):
    """A reference or version constraint that cannot be parsed."""


def check_name(name: str) -> str | None:
    """Return why `name` is not a DNS-1123 label, or None when it is one."""
    if NAME_RE.fullmatch(name):
        return None
    return (
        f"invalid name {name!r}: use 1-63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit"
    )


def valid_name(name: str) -> str:
    """`name` when it is a DNS-1123 label; a ValueError saying why otherwise (for pydantic validators)."""
    problem = check_name(name)
    if problem:
        raise ValueError(problem)
    return name


def check_version(version: str) -> str | None:
    """Return why `version` is not semver, or None when it is valid."""
    if semver.Version.is_valid(version):
        return None
    return f"invalid version {version!r}: use semantic versioning MAJOR.MINOR.PATCH, e.g. 1.0.0"


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A version constraint: exact `1.2.0`, caret `^1.2`, tilde `~1.2`, partial `1.2`, `*` or comparators.

    Pre-releases follow semver ranges as npm reads them: a pre-release such as 1.2.1-rc.1 is only chosen
    by a constraint that names a pre-release of the same MAJOR.MINOR.PATCH (`^1.2.1-rc.1`,
    `>=1.2.1-rc.1,<2.0.0`, or exactly `1.2.1-rc.1`); any release is always preferred over lower ones, so a
    pre-release never hides a later stable release (`^1.2` picks 1.2.1 over 1.2.1-rc.1).
    """

    text: str
    lower: semver.Version | None
    upper: semver.Version | None  # exclusive
    exact: bool

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        t = text.strip()
        if t in ("", "*", "latest"):
            return cls(text, None, None, False)
        if semver.Version.is_valid(t):
            v = semver.Version.parse(t)
            return cls(text, v, v, True)
        if t[0] in "^~":
            return cls._caret_tilde(text, t)
        m = _PARTIAL_RE.match(t.rstrip(".x*").rstrip("."))
        if m and m["patch"] is None:
            low = semver.Version(int(m["major"]), int(m["minor"] or 0), 0)
            return cls(text, low, low.bump_major() if m["minor"] is None else low.bump_minor(), False)
        return cls._comparators(text)

    @classmethod
    def _caret_tilde(cls, text: str, t: str) -> VersionRange:
        op, rest = t[0], t[1:].strip()
        pre: str | None = None
        major: int | None
        minor: int | None
        patch: int | None
        if semver.Version.is_valid(rest):  # ^1.2.1-rc.1: a full version, maybe a pre-release
            full = semver.Version.parse(rest)
            major, minor, patch, pre = full.major, full.minor, full.patch, full.prerelease
        else:
            m = _PARTIAL_RE.match(rest)
            if not m:
                raise RefError(f"invalid version constraint {text[:60]!r}")
            major, minor, patch = (int(m[g]) if m[g] else None for g in ("major", "minor", "patch"))
        low = semver.Version(major or 0, minor or 0, patch or 0, pre)
        base = semver.Version(major or 0, minor or 0, patch or 0)
        if op == "~":
            high = base.bump_major() if minor is None else base.bump_minor()
        elif major or minor is None:
            high = base.bump_major()
        elif minor or patch is None:
            high = base.bump_minor()
        else:
            high = base.bump_patch()
        return cls(text, low, high, False)

    @classmethod
    def _comparators(cls, text: str) -> VersionRange:
        lower: semver.Version | None = None
        upper: semver.Version | None = None
        for part in re.split(r"[,\s]+", text.strip()):
            m = re.match(r"^(>=|<)(.+)$", part)
            if not m or not semver.Version.is_valid(m[2]):
                raise RefError(
                    f"invalid version constraint {text[:60]!r}: "
                    "use 1.2.0, ^1.2, ~1.2, 1.2, or '>=1.0.0,<2.0.0'"
                )
            if m[1] == ">=":
                lower = semver.Version.parse(m[2])
            else:
                upper = semver.Version.parse(m[2])
        return cls(text, lower, upper, False)

    def allows(self, version: str | semver.Version) -> bool:
        v = version if isinstance(version, semver.Version) else semver.Version.parse(version)
        if self.exact:
            return v.compare(self.lower) == 0 if self.lower is not None else False
        if v.prerelease and not any(
            b is not None and b.prerelease and b.to_tuple()[:3] == v.to_tuple()[:3]
            for b in (self.lower, self.upper)
        ):
            return False
        if self.lower is not None and v < self.lower:
            return False
        return not (self.upper is not None and v >= self.upper)

    def best(self, versions: list[str]) -> str | None:
        """The highest of `versions` this range allows, or None."""
        allowed = [semver.Version.parse(v) for v in versions if semver.Version.is_valid(v) and self.allows(v)]
        return str(max(allowed)) if allowed else None


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference. `version` is the constraint text, None for latest."""

    kind: Kind
    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Ref:
        return _parse_ref(text)

    @classmethod
    def _parse(cls, text: str) -> Ref:
        m = _REF_RE.match(text.strip())
        if not m or m["kind"] not in KINDS:
            raise RefError(
                f"invalid reference {text!r}: write KIND/NAME or KIND/NAME@VERSION "
                "with KIND one of playbook, pipeline, metapipeline (e.g. playbook/sklearn-train@1.0.0)"
            )
        name_problem = check_name(m["name"])
        if name_problem:
            raise RefError(f"invalid reference {text!r}: {name_problem}")
        version = m["version"]
        if version is not None:
            VersionRange.parse(version)
        return cls(cast(Kind, m["kind"]), m["name"], version)

    @property
    def range(self) -> VersionRange:
        return VersionRange.parse(self.version or "*")

    def pinned(self, version: str) -> Ref:
        return Ref(self.kind, self.name, version)

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}" + (f"@{self.version}" if self.version else "")


@functools.lru_cache(maxsize=8192)
def _parse_ref(text: str) -> Ref:
    return Ref._parse(text)
