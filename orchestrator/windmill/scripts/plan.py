"""The compiled, placed plan of a pipeline and the Terraform (or other infrastructure code) each
deployment would apply, with the estimated cost; creates nothing."""

from f.mlops.gateway_client import call


def main(gateway_url: str, gateway_key: str, pipeline: str, parameters: dict = None, target=None) -> dict:
    body = {"pipeline": pipeline, "parameters": parameters or {}, "target": target or None}
    plan = call(gateway_url, gateway_key, "POST", "/api/v1/plan", body)
    files = {}
    for bundle in plan.get("bundles") or []:
        for name, text in (bundle.get("files") or {}).items():
            files[f"{bundle.get('deployment', 'bundle')}/{name}"] = text
    return {
        "steps": [s.get("id") for s in plan.get("steps") or []],
        "cost": plan.get("cost"),
        "terraform": files,
        "plan": plan,
    }
