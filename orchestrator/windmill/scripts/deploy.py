"""Deploy a pipeline through the gateway (the blueprint's POST /pipelines/deploy): the run is queued; its
id is the pipeline_id that wait and wait_step follow."""

from f.mlops.gateway_client import call


def main(
    gateway_url: str, gateway_key: str, pipeline: str, parameters: dict = None, target=None, keep: bool = False
) -> dict:
    body = {"pipeline": pipeline, "parameters": parameters or {}, "target": target or None, "keep": bool(keep)}
    return call(gateway_url, gateway_key, "POST", "/pipelines/deploy", body)
