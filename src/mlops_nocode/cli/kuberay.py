"""`mlops targets kuberay PIPELINE`: a KubeRay RayCluster manifest sized for a pipeline's steps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_nocode.cli.report import err, fail, write_output
from mlops_nocode.spec import Problem, SpecError


def kuberay(
    target: Annotated[str, typer.Argument(help="A spec file or folder, or a ref such as pipeline/NAME")],
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write the manifest to FILE")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", "-s", help="Parameter NAME=VALUE")] = None,
    catalogues: Annotated[list[str] | None, typer.Option("--catalogue", "-c", help="Extra catalogue")] = None,
    pipeline: Annotated[str | None, typer.Option("--pipeline", "-p", help="Which pipeline")] = None,
    name: Annotated[str | None, typer.Option(help="The RayCluster's name")] = None,
    namespace: Annotated[str | None, typer.Option(help="Its namespace (default mlops-ray)")] = None,
    image: Annotated[str | None, typer.Option(help="Ray image, or 'platform' (RUNNER_IMAGE)")] = None,
    workers: Annotated[int | None, typer.Option(help="CPU workers (replicas)")] = None,
    max_workers: Annotated[int | None, typer.Option(help="At most this many CPU workers")] = None,
    gpu_workers: Annotated[int | None, typer.Option(help="GPU workers (replicas)")] = None,
    network_policy: Annotated[
        bool | None, typer.Option(help="Add a NetworkPolicy: only its pods and labelled clients connect")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Problems as JSON")] = False,
) -> None:
    """Print (or write) a KubeRay RayCluster (ray.io/v1) sized for the pipeline's python and command
    steps (its ray steps when some have a ray target): head, CPU workers, GPU workers when steps need
    GPUs, custom resources. Starts from the ray target's `options.kuberay`; flags override it. Render-only:
    `kubectl apply -f` it where the KubeRay operator runs."""
    from mlops_nocode.cli.source import load_source, parse_sets
    from mlops_nocode.compiler import compile_plan
    from mlops_nocode.providers import kuberay as kr

    try:
        src = load_source(target, catalogues or [], pipeline)
        params = parse_sets(sets or [], src.root.spec.parameters)
        plan = compile_plan(src.root, src.catalogue, params)
    except SpecError as e:
        fail(e.problems, as_json)
    on_ray = [s for s in plan.steps if isinstance(s.target, dict) and s.target.get("provider") == "ray"]
    steps = on_ray or list(plan.steps)
    base = (steps[0].target.get("options") or {}).get("kuberay") if on_ray else None
    options: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
    flags = {"name": name, "namespace": namespace, "image": image, "network_policy": network_policy}
    options.update({k: v for k, v in flags.items() if v is not None})
    for key, replicas, high in (("workers", workers, max_workers), ("gpu_workers", gpu_workers, None)):
        group = dict(options.get(key) or {}) if isinstance(options.get(key), dict) else {}
        group.update({k: v for k, v in (("replicas", replicas), ("max", high)) if v is not None})
        if group:
            options[key] = group
    problems = kr.option_problems(options, "kuberay (target.options.kuberay and flags)")
    if problems:
        fail(problems, as_json)
    o = kr.parse(options)
    try:
        default = kr.cluster_name("ray", plan.root.split("/")[-1].split("@")[0])
        objs = kr.manifests(steps, o, name=o.name or default)
    except ValueError as e:
        fail([Problem(str(e), target, "give the pipeline python or command steps")], as_json)
    text = kr.manifest_yaml(objs)
    if out_file is None:
        print(text, end="")
        return
    write_output(out_file, text, "--out", as_json)
    err.print(f"[green]✓[/] RayCluster {objs[0]['metadata']['name']} written to {out_file}")
