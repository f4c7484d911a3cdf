"""Artifacts and step results shared between machines through the S3 store (`runtime/s3store.py`).

A Runner with ARTIFACT_STORE_URL set keeps using its local store (steps read their inputs from local
paths), and this module links the two:
- `publish`: once a step succeeded, its artifacts are uploaded by content (nothing is sent for what the
  bucket has already) and its JSON values written under `values/`;
- `materialise`: records read from the bucket (another machine's outputs) are downloaded into the local
  store, their digests checked, and given local paths;
- the step cache index lives in the bucket (`cache/<key>.json`): a Runner on another machine finds the
  results of steps that ran elsewhere;
- step results by run (`runs/<run>/<step>.json`): what a step of a run ended with, so that a Runner that
  runs only some steps of a plan can wait for the others (`wait_result`, polled with a deadline,
  cancellable).

Consistency: every document is written in one PUT, which S3 makes atomic (a reader sees all of it or
nothing) and, on AWS S3 since 2020, MinIO and Ceph-based stores, readable at once by every later
request. A record is written only after every artifact it names (an artifact exists once its manifest
does, and the manifest is written after its data), so whoever reads a record finds its artifacts. Cache
records are written with a conditional put (If-None-Match: *): the first writer wins; two Runners that ran
the same step wrote equivalent outputs, so either record is right. On a server without conditional
writes the last writer wins, which is just as right.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.limits import OutputLimits
from mlops_nocode.runtime.s3store import S3Store, StoreError
from mlops_nocode.runtime.state import Cancelled
from mlops_nocode.runtime.store import ArtifactStore, Ref, safe_component, safe_rel
from mlops_nocode.spec.errors import Problem

POLL_EVERY = 0.5


class SharedArtifacts:
    """The local store of this machine, mirrored to and from an S3 store."""

    def __init__(self, s3: S3Store, local: ArtifactStore, limits: OutputLimits) -> None:
        self.s3, self.local, self.limits = s3, local, limits

    def publish(self, outputs: dict[str, dict[str, Any]]) -> None:
        """Upload a step's outputs (records with local paths) to the bucket."""
        for rec in outputs.values():
            if "value" in rec:
                self.s3.put_json(self.s3.key("values", f"{rec['digest']}.json"), rec["value"], True)
            else:
                path = Path(rec["path"])
                self.s3.put_path(path, rec["digest"])

    @staticmethod
    def portable(outputs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The records without this machine's paths: {type, digest, value} or {type, digest, ref}."""
        out: dict[str, dict[str, Any]] = {}
        for name, rec in outputs.items():
            base = {"type": rec.get("type"), "digest": rec["digest"]}
            if "value" in rec:
                out[name] = base | {"value": rec["value"]}
            else:
                out[name] = base | {"ref": str(Ref(rec["digest"], Path(rec["path"]).name))}
        return out

    def materialise(self, records: Any) -> dict[str, dict[str, Any]] | None:
        """Portable records (from the bucket: untrusted) made local: artifacts downloaded into the local
        store when it lacks them; None when the records are malformed or name what does not match."""
        if not isinstance(records, dict):
            return None
        out: dict[str, dict[str, Any]] = {}
        for name, rec in records.items():
            if not isinstance(rec, dict) or not isinstance(rec.get("digest"), str):
                return None
            if "value" in rec:
                digest, path = self.local.put_value(rec["value"], str(name))
                if digest != rec["digest"]:
                    return None
                out[name] = {
                    "type": rec.get("type"),
                    "digest": digest,
                    "path": str(path),
                    "value": rec["value"],
                }
                continue
            try:
                ref = Ref.parse(str(rec.get("ref", "")))
            except ValueError:
                return None
            if ref.digest != rec["digest"]:
                return None
            if not self.local.path_of(ref.digest, ref.name).exists() and not self.s3.exists(ref):
                return None  # gone from the bucket (cleaned up): the step runs again
            out[name] = {"type": rec.get("type"), "digest": ref.digest, "path": str(self.fetch(ref))}
        return out

    def fetch(self, ref: Ref) -> Path:
        """The local stored path of `ref`, downloaded from the bucket (and checked) when not here yet."""
        path = self.local.path_of(ref.digest, ref.name)
        if path.exists():
            return path
        staging = self.local.new_staging()
        try:
            self.s3.get(ref, staging, self.limits)
            return self.local.adopt(staging, ref.digest, ref.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def fetch_value(self, digest: str) -> Path | None:
        """The local file of a JSON value stored in the bucket (None when the bucket has none)."""
        value = self.s3.get_json(
            self.s3.key("values", f"{digest}.json"), int(self.limits.step_values_max_bytes)
        )
        if value is None:
            return None
        got, path = self.local.put_value(value, "value")
        return path if got == digest else None

    # --- the step cache index --------------------------------------------------------------------------

    def cache_get(self, key: str) -> dict[str, dict[str, Any]] | None:
        doc = self.s3.get_json(self.s3.key("cache", f"{key}.json"), self._max_record())
        return self.materialise(doc) if doc is not None else None

    def cache_put(self, key: str, outputs: dict[str, dict[str, Any]]) -> None:
        self.s3.put_json(self.s3.key("cache", f"{key}.json"), self.portable(outputs), only_if_absent=True)

    # --- step results by run ---------------------------------------------------------------------------

    def _result_key(self, run_id: str, step_id: str) -> str:
        if not safe_component(run_id) or not safe_rel(step_id):
            raise ValueError(f"not a run id and step id: {run_id[:80]!r}, {step_id[:80]!r}")
        return self.s3.key("runs", run_id, f"{step_id}.json")

    def put_result(
        self,
        run_id: str,
        step_id: str,
        status: str,
        outputs: dict[str, dict[str, Any]] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a step of a run ended (its outputs must be published already)."""
        doc: dict[str, Any] = {"status": status, "error": error}
        if outputs is not None:
            doc["outputs"] = self.portable(outputs)
        self.s3.put_json(self._result_key(run_id, step_id), doc)

    def wait_result(
        self,
        run_id: str,
        step_id: str,
        deadline: float,
        cancelled: Callable[[], bool] | threading.Event | None = None,
        every: float = POLL_EVERY,
    ) -> dict[str, Any]:
        """How step `step_id` of run `run_id` ended on another machine: {status, error, outputs (local
        records, when it succeeded)}. Polls the bucket until `deadline` (time.monotonic()), raising
        StoreError then; raises state.Cancelled as soon as `cancelled` says so."""
        key = self._result_key(run_id, step_id)
        stop = cancelled.is_set if isinstance(cancelled, threading.Event) else cancelled
        while True:
            if stop is not None and stop():
                raise Cancelled
            doc = self.s3.get_json(key, self._max_record())
            if isinstance(doc, dict) and isinstance(doc.get("status"), str):
                result: dict[str, Any] = {"status": doc["status"], "error": doc.get("error")}
                if doc["status"] == "succeeded":
                    outputs = self.materialise(doc.get("outputs"))
                    if outputs is None:
                        raise self._refused(step_id, run_id)
                    result["outputs"] = outputs
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(
                    Problem(
                        f"step {step_id} of run {run_id} has no result in the store yet",
                        self.s3.where,
                        "check the Runner that runs it (its machine, its logs), or wait longer",
                    )
                )
            if isinstance(cancelled, threading.Event):
                cancelled.wait(min(every, left))
            else:
                time.sleep(min(every, left))

    def _refused(self, step_id: str, run_id: str) -> StoreError:
        return StoreError(
            Problem(
                f"the result of step {step_id} of run {run_id} in the store is malformed",
                self.s3.where,
                "run the step again",
            )
        )

    def _max_record(self) -> int:
        return int(self.limits.step_values_max_bytes) + (1 << 20)


def open_shared(local: ArtifactStore, limits: OutputLimits) -> SharedArtifacts | None:
    """The shared store the ARTIFACT_STORE_* settings name (StoreError when they are bad), or None."""
    from mlops_nocode.runtime.s3store import open_store

    s3 = open_store()
    return SharedArtifacts(s3, local, limits) if s3 is not None else None
