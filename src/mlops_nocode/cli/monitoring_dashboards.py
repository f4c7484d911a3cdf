"""`mlops monitoring dashboards --out DIR`: write the Grafana dashboards generated from the platform's
charts (one JSON file per dashboard; Grafana's file provisioning loads the folder).

The dashboards are built with grafana-foundation-sdk (the `monitoring` extra), imported only here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mlops_nocode.cli.report import fail, out
from mlops_nocode.cli.tables import Col, fitted
from mlops_nocode.spec import Problem

SHIPPED = "deploy/monitoring/grafana/dashboards"


def dashboards(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help=f"Folder to write the dashboards into (created if missing; the repository ships {SHIPPED})",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")] = False,
) -> None:
    """Generate the Grafana dashboards (overview, runs and steps, models, costs) as JSON files."""
    try:
        from mlops_nocode.monitoring import dashboards as boards
    except ImportError as e:
        fail(
            [
                Problem(
                    f"the dashboards need the Grafana Foundation SDK, which is not installed ({e.name})",
                    "mlops monitoring dashboards",
                    "pip install 'mlops-nocode[monitoring]'",
                )
            ],
            as_json,
        )
    try:
        written = boards.write(out_dir)
    except OSError as e:
        fail(
            [
                Problem(
                    f"cannot write the dashboards into {out_dir}: {e.strerror or e}",
                    "--out",
                    "give a folder you can write to (it is created if missing; a file of that name is not)",
                )
            ],
            as_json,
        )
    rows: list[dict[str, str | int]] = []
    for spec, path in zip(boards.DASHBOARDS, written, strict=True):
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows.append({"file": str(path), "uid": spec.uid, "title": spec.title, "panels": len(doc["panels"])})
    if as_json:
        print(json.dumps({"status": "written", "dashboards": rows}, indent=2))
        return
    cols = [
        Col("file", middle=True, weight=2.0),
        Col("uid"),
        Col("title", min_terminal=80),
        Col("panels", justify="right"),
    ]
    table_rows = [[Path(str(r["file"])).name, str(r["uid"]), str(r["title"]), str(r["panels"])] for r in rows]
    out.print(fitted(f"{len(rows)} Grafana dashboards written to {out_dir}", cols, table_rows, out.width))
