"""`mlops monitoring ...`: Prometheus and Alertmanager on this machine against the gateway (`up`, `down`,
`status`) and the Grafana dashboards generated from the platform's charts (`dashboards`).

Each command lives in its own module and is registered here; heavy imports stay inside the commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Prometheus, Alertmanager and Grafana dashboards for the platform's metrics.", no_args_is_help=True
)

from mlops_nocode.cli.monitoring_dashboards import dashboards  # noqa: E402

app.command("dashboards")(dashboards)
