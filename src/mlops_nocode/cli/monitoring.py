"""`mlops monitoring ...`: Prometheus and Alertmanager on this machine against the gateway (`up`, `down`,
`status`) and the Grafana dashboards generated from the platform's charts (`dashboards`).

Each command lives in its own module and is registered here; heavy imports stay inside the commands."""

from __future__ import annotations

import typer

from mlops_nocode.cli import monitoring_dashboards, monitoring_stack

app = typer.Typer(
    help="Prometheus, Alertmanager and Grafana dashboards for the platform's metrics.", no_args_is_help=True
)
app.command("up")(monitoring_stack.up)
app.command("down")(monitoring_stack.down)
app.command("status")(monitoring_stack.status)
app.command("dashboards")(monitoring_dashboards.dashboards)
