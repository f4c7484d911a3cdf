"""The gate after a checkov scan: every high-severity finding must be explained in the README beside it.

Checkov run offline (no platform API key) reports no severity at all: a finding without one counts as
high, so in practice every failed or inline-skipped check needs its line in the "Checkov" section of
the nearest README.md above the file (a module's README), as a bullet naming the check and its reason:

    ## Checkov
    - CKV_K8S_21: each run gets its own namespace, passed in as a variable

    python -m tests.iac.checkov_gate REPORT.json ROOT    (exit 1 listing what is unexplained)
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BLOCKING = {"HIGH", "CRITICAL", None}  # None: checkov offline gives no severity, so assume the worst
SECTION = re.compile(r"^#+\s*Checkov\b.*$", re.MULTILINE)
EXPLAINED = re.compile(r"^\s*[-*]\s*`?(CKV2?_[A-Z0-9_]+)`?\s*[:—-]\s*(\S.{4,})$", re.MULTILINE)


def explanations(readme: Path) -> dict[str, str]:
    """check id -> reason, from the README's "Checkov" section (up to the next heading of any level)."""
    if not readme.is_file():
        return {}
    text = readme.read_text(encoding="utf-8")
    match = SECTION.search(text)
    if not match:
        return {}
    rest = text[match.end() :]
    end = re.search(r"^#", rest, re.MULTILINE)
    return {m.group(1): m.group(2).strip() for m in EXPLAINED.finditer(rest[: end.start() if end else None])}


def readme_for(path: Path, root: Path) -> Path:
    """The nearest README.md at or above `path`'s folder, not above `root`."""
    folder = path.parent
    while folder != root and root in folder.parents and not (folder / "README.md").is_file():
        folder = folder.parent
    return folder / "README.md"


def _located(finding: Mapping[str, Any], root: Path) -> Path:
    """The scanned file: `file_abs_path`, unless it names no file (checkov 3.3's kubernetes framework
    joins the scanned folder with a path that already starts with it: deploy/deploy/k8s/...), then
    `file_path` under the scanned folder or, holding the folder's own name, under its parent."""
    given = finding.get("file_abs_path")
    relative = str(finding.get("file_path", "")).lstrip("/")
    for candidate in (Path(given) if given else None, root / relative, root.parent / relative):
        if candidate is not None and candidate.is_file():
            return candidate
    return Path(given) if given else root / relative


def findings(report: Any) -> Iterable[Mapping[str, Any]]:
    """Failed and (inline-)skipped checks of a checkov JSON report (one framework or a list of them)."""
    for part in report if isinstance(report, list) else [report]:
        results = part.get("results", {}) if isinstance(part, dict) else {}
        yield from results.get("failed_checks", [])
        yield from results.get("skipped_checks", [])


def unexplained(report: Any, root: Path) -> list[str]:
    """One line per blocking finding that its README does not explain."""
    out = []
    for f in findings(report):
        severity = (f.get("severity") or None) and str(f["severity"]).upper()
        if severity not in BLOCKING:
            continue
        path = _located(f, root)
        readme = readme_for(path, root)
        if f["check_id"] not in explanations(readme):
            shown = path.relative_to(root) if root in path.parents else path
            out.append(
                f"{shown}: {f.get('resource')}: {f['check_id']} ({f.get('check_name')}), severity "
                f"{severity or 'unknown (counted as high)'}: fix it, or explain it in {readme} under "
                f'"## Checkov" as `- {f["check_id"]}: reason`'
            )
    return sorted(set(out))


def main(argv: list[str]) -> int:
    report = json.loads(Path(argv[0]).read_text(encoding="utf-8") or "[]")
    problems = unexplained(report, Path(argv[1]).resolve())
    for p in problems:
        print(p)
    print(f"checkov: {sum(1 for _ in findings(report))} findings, {len(problems)} unexplained")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
