"""`python -m mlops_nocode.providers.ray_nodes ADDRESS`: print the live nodes of the Ray cluster at ADDRESS
as JSON (node_facts of each), in a process of its own, so that reading them leaves no Ray connection in
the caller (Ray allows one per process, and a gateway must not hold one for a refresh)."""

from __future__ import annotations

import json
import sys
from typing import Any


def main(address: str) -> int:
    import ray

    from mlops_nocode.providers.ray_options import node_facts

    kwargs: dict[str, Any] = (
        {"_node_ip_address": "127.0.0.1"} if address.split(":")[0] in ("127.0.0.1", "localhost") else {}
    )
    ray.init(address=address, namespace="mlops", log_to_driver=False, logging_level=40, **kwargs)
    try:
        nodes = [node_facts(n) for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    finally:
        ray.shutdown()
    sys.stdout.write(json.dumps(nodes) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
