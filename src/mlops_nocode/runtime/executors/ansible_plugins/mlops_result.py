"""An Ansible callback plugin (loaded by ansible-playbook, not by the platform): it writes the play recap,
the tasks that failed and the play's `set_stats` data as JSON to the file named by MLOPS_ANSIBLE_RESULT,
beside the human output of the default stdout callback (which stays in the step's log)."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: mlops_result
type: aggregate
short_description: the play recap and failed tasks as JSON, for the MLOps platform
description: Writes the recap, failed tasks and set_stats data to the file in MLOPS_ANSIBLE_RESULT.
"""

RECAP = ("ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored")
MAX_MESSAGE = 2000


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mlops_result"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._failed: list[dict[str, str]] = []

    def _record(self, result: Any, kind: str) -> None:
        if len(self._failed) >= 100:
            return
        res = result._result if isinstance(result._result, dict) else {}
        msg = res.get("msg") or res.get("stderr") or res.get("reason") or ""
        self._failed.append(
            {
                "kind": kind,
                "task": str(result._task.get_name()),
                "host": str(result._host.get_name()),
                "message": str(msg)[:MAX_MESSAGE],
            }
        )

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        if not ignore_errors:
            self._record(result, "failed")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = {str(h): {k: int(v) for k, v in stats.summarize(h).items()} for h in sorted(stats.processed)}
        custom = stats.custom.get("_run", {}) if isinstance(stats.custom, dict) else {}
        path = os.environ.get("MLOPS_ANSIBLE_RESULT")
        if not path:
            return
        data = {"hosts": hosts, "failed": self._failed, "stats": custom}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, default=str)
