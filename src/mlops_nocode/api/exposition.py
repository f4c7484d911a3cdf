"""The database families in the Prometheus text format, written directly: a histogram of 3 labels per
(status, target, pipeline) makes thousands of samples, which prometheus_client's generic exposition
formats several times slower than these few string joins (bench/metrics.py)."""

from __future__ import annotations

from collections.abc import Iterable

from mlops_nocode.monitoring import names
from mlops_nocode.runs.stats import Histogram

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(keys: Iterable[str], values: Labels) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in zip(keys, values, strict=True))


def _head(name: str) -> list[str]:
    m = names.BY_NAME[name]
    exposed = m.name + "_total" if m.kind == "counter" else m.name
    help_text = m.help.replace("\\", "\\\\").replace("\n", "\\n")
    return [f"# HELP {exposed} {help_text}", f"# TYPE {exposed} {m.kind}"]


def scalar(name: str, values: dict[Labels, float]) -> str:
    """A counter or gauge family: one sample per label set."""
    m = names.BY_NAME[name]
    sample = m.name + "_total" if m.kind == "counter" else m.name
    lines = _head(name)
    for labels, value in values.items():
        inner = _labels(m.labels, labels)
        lines.append(f"{sample}{{{inner}}} {float(value)!r}" if inner else f"{sample} {float(value)!r}")
    return "\n".join(lines) + "\n"


def histogram(name: str, values: dict[Labels, Histogram], bounds: tuple[float, ...]) -> str:
    """A histogram family: cumulative buckets, sum and count per label set."""
    m = names.BY_NAME[name]
    les = [f'le="{float(b)!r}"' for b in bounds] + ['le="+Inf"']
    lines = _head(name)
    for labels, h in values.items():
        inner = _labels(m.labels, labels)
        prefix = inner + "," if inner else ""
        running = 0
        for le, n in zip(les, h.buckets, strict=True):
            running += n
            lines.append(f"{m.name}_bucket{{{prefix}{le}}} {float(running)!r}")
        suffix = f"{{{inner}}}" if inner else ""
        lines.append(f"{m.name}_sum{suffix} {float(h.total)!r}")
        lines.append(f"{m.name}_count{suffix} {float(h.count)!r}")
    return "\n".join(lines) + "\n"
