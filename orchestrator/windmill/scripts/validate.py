"""Validate a pipeline (ref or inline spec) with its parameters through the gateway: schema, refs,
parameters, types, cycles. Fails with the gateway's located problems."""

from f.mlops.gateway_client import call


def main(gateway_url: str, gateway_key: str, pipeline: str, parameters: dict = None, target=None) -> dict:
    body = {"pipeline": pipeline, "parameters": parameters or {}, "target": target or None}
    return call(gateway_url, gateway_key, "POST", "/api/v1/validate", body)
