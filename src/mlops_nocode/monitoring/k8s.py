"""The monitoring stack's ConfigMaps for Kubernetes (deploy/k8s/monitoring/configmaps.yaml), made from the
shipped files of deploy/monitoring so the cluster runs exactly what the Compose stack and the tests run.

    python -m mlops_nocode.monitoring.k8s [OUT_FILE]   (default: print to stdout)
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from mlops_nocode.monitoring.files import shipped_monitoring

# ConfigMap name -> (folder under deploy/monitoring, file pattern)
SOURCES: dict[str, tuple[str, str]] = {
    "prometheus-config": ("prometheus", "prometheus.yml"),
    "prometheus-rules": ("prometheus/rules", "*.yml"),
    "alertmanager-config": ("alertmanager", "alertmanager.yml"),
    "grafana-datasources": ("grafana/provisioning/datasources", "*.yml"),
    "grafana-dashboard-providers": ("grafana/provisioning/dashboards", "*.yml"),
    "grafana-dashboards": ("grafana/dashboards", "*.json"),
}
HEADER = (
    "# Generated from deploy/monitoring by `python -m mlops_nocode.monitoring.k8s "
    "deploy/k8s/monitoring/configmaps.yaml`: edit the shipped files, then run it again (a test checks).\n"
)
LABELS = {"app.kubernetes.io/part-of": "mlops-monitoring", "app.kubernetes.io/managed-by": "mlops-nocode"}


def configmaps(root: Path | None = None) -> list[dict[str, object]]:
    """One ConfigMap per entry of SOURCES holding its files (a folder that is absent gives an empty one)."""
    base = root or shipped_monitoring()
    out: list[dict[str, object]] = []
    for name, (folder, pattern) in SOURCES.items():
        files = sorted((base / folder).glob(pattern)) if (base / folder).is_dir() else []
        data = {f.name: f.read_text(encoding="utf-8") for f in files if f.is_file()}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": dict(LABELS)},
                "data": data,
            }
        )
    return out


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the files) as literal blocks, readable in the manifest."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def configmaps_yaml(root: Path | None = None) -> str:
    """The ConfigMaps as one YAML stream, with the header naming how to regenerate them."""
    docs = configmaps(root)
    body = yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True
    )
    return HEADER + body


def main(argv: list[str]) -> int:
    text = configmaps_yaml()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
