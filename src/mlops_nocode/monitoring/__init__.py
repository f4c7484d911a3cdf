"""Monitoring: the metrics the gateway exports (`names`), the charts drawn from them (`charts`), the
Grafana dashboards generated from those charts, and the local Prometheus/Alertmanager stack."""
