"""Run every benchmark: `python -m bench [--quick]`; results also go to bench/results/latest.json."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from bench import (
    assistant,
    catalogue_scale,
    compile_scale,
    fork_cost,
    gateway_load,
    ray_overhead,
    render_targets,
    runner_overhead,
    sandbox_cost,
)


def main() -> None:
    quick = "--quick" in sys.argv
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    results = {
        "started": started,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "compile_scale": compile_scale.main(quick),
        "render_targets": render_targets.main(quick),
        "runner_overhead": runner_overhead.main(quick),
        "fork_cost": fork_cost.main(),
        "sandbox_cost": sandbox_cost.main(),
        "catalogue_scale": catalogue_scale.main(quick),
        "gateway_load": gateway_load.main(quick),
        "assistant": assistant.main(quick),
        "ray_overhead": ray_overhead.main(quick),
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {out / 'latest.json'}")


if __name__ == "__main__":
    main()
