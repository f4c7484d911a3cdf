"""Where the shipped monitoring files are: `deploy/monitoring/` of a checkout, or its copy in the wheel."""

from __future__ import annotations

from pathlib import Path


def shipped_monitoring() -> Path:
    """The folder of the shipped monitoring stack (Prometheus rules, Alertmanager and Grafana files):
    inside the installed package (wheel), else the repository's deploy/monitoring (editable install)."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_deploy" / "monitoring"
    return packaged if packaged.is_dir() else here.parent.parent / "deploy" / "monitoring"
