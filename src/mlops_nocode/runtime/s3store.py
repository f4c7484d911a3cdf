"""An S3-compatible artifact store (AWS S3, Exoscale SOS, MinIO, ...), content-addressed like the local one.

Settings (environment variables; the store is used when ARTIFACT_STORE_URL is set):
- `ARTIFACT_STORE_URL`: `s3://BUCKET/PREFIX` (the prefix is optional).
- `ARTIFACT_STORE_ENDPOINT`: the server's URL (`https://sos-ch-gva-2.exo.io`, `http://127.0.0.1:9000`);
  empty for AWS S3.
- `ARTIFACT_STORE_REGION`: the region (default `us-east-1`).
- `ARTIFACT_STORE_ACCESS_KEY` / `ARTIFACT_STORE_SECRET_KEY`: the credentials; when unset, boto3's own
  chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, profiles, instance roles) is used.
- `ARTIFACT_STORE_CONNECT_TIMEOUT`, `ARTIFACT_STORE_READ_TIMEOUT` (seconds), `ARTIFACT_STORE_ATTEMPTS`,
  `ARTIFACT_STORE_MULTIPART_THRESHOLD`, `ARTIFACT_STORE_MULTIPART_CHUNK` (sizes), `ARTIFACT_STORE_ADDRESSING`
  (`path` or `virtual`; default `path` with an endpoint, else `virtual`).

Layout under the prefix (a ref is `<sha256>/<name>`, the same digest as the local store's):
- `artifacts/<ab>/<sha256>/<name>`: a file artifact, one object;
- `artifacts/<ab>/<sha256>/<name>/<path>`: each file of a folder artifact, one object per file;
- `manifests/<ab>/<sha256>/<name>.json`: what the artifact holds (kind, files with sizes, folders),
  written last: an artifact exists once its manifest does;
- `values/<sha256>.json`: JSON values; `cache/<key>.json`, `runs/<run>/<step>.json`: see `runtime/shared.py`.

Credentials are never put into a message: errors name the bucket, the endpoint and what the server said
(its error code), never a key.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import ByteSize, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.runtime.limits import OutputLimits, load_limits
from mlops_nocode.runtime.store import Ref, hash_path, safe_rel
from mlops_nocode.spec.errors import Problem

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1 << 20
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
FIX_CREDENTIALS = (
    "set ARTIFACT_STORE_ACCESS_KEY and ARTIFACT_STORE_SECRET_KEY (or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY) to a key pair allowed to read and write the bucket"
)


class StoreError(Exception):
    """The artifact store could not do what was asked; carries one located `Problem` (no secret in it)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class StoreSettings(BaseSettings):
    """Where the S3-compatible artifact store is and how to talk to it (ARTIFACT_STORE_*)."""

    model_config = SettingsConfigDict(env_prefix="ARTIFACT_STORE_", case_sensitive=False, extra="ignore")

    url: str = Field("", description="s3://BUCKET/PREFIX; empty: only the local store under MLOPS_HOME")
    endpoint: str = Field("", description="the S3 server's URL; empty for AWS S3")
    region: str = Field("us-east-1", description="the bucket's region")
    access_key: SecretStr | None = Field(None, description="access key id (else AWS_ACCESS_KEY_ID ...)")
    secret_key: SecretStr | None = Field(None, description="secret key (else AWS_SECRET_ACCESS_KEY ...)")
    connect_timeout: float = Field(5.0, gt=0, le=300, description="seconds to connect")
    read_timeout: float = Field(60.0, gt=0, le=3600, description="seconds to wait for an answer")
    attempts: int = Field(3, ge=1, le=20, description="tries of one request (botocore's standard retries)")
    multipart_threshold: ByteSize = Field(
        ByteSize(64 * MiB), ge=5 * MiB, description="multipart from this size"
    )
    multipart_chunk: ByteSize = Field(ByteSize(16 * MiB), ge=5 * MiB, description="size of one part")
    addressing: Literal["", "path", "virtual"] = Field("", description="bucket addressing style")


def load_store_settings() -> StoreSettings:
    """The ARTIFACT_STORE_* settings; StoreError naming the variable when one is bad."""
    try:
        return StoreSettings()
    except ValidationError as exc:
        bad = "; ".join(
            f"ARTIFACT_STORE_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise StoreError(
            Problem(f"invalid artifact store settings: {bad}", "environment", "fix them")
        ) from None


class S3Store:
    """The S3 side: put a file or folder by content, get it back into a folder, exists, open, size."""

    def __init__(self, settings: StoreSettings) -> None:
        parts = urlsplit(settings.url)
        if parts.scheme != "s3" or not _BUCKET.fullmatch(parts.netloc) or parts.query or parts.fragment:
            raise StoreError(
                Problem(
                    "ARTIFACT_STORE_URL must look like s3://BUCKET/PREFIX (a bucket name of 3 to 63 "
                    "lowercase letters, digits, dots and hyphens)",
                    "ARTIFACT_STORE_URL",
                    "for example s3://my-bucket/mlops",
                )
            )
        prefix = parts.path.strip("/")
        if prefix and not safe_rel(prefix):
            raise StoreError(Problem("the prefix has an empty, . or .. part", "ARTIFACT_STORE_URL", "fix it"))
        ep = urlsplit(settings.endpoint) if settings.endpoint else None
        if ep is not None and (ep.scheme not in ("http", "https") or not ep.hostname or ep.username):
            raise StoreError(
                Problem(
                    "ARTIFACT_STORE_ENDPOINT must be an http(s) URL without credentials in it",
                    "ARTIFACT_STORE_ENDPOINT",
                    "for example https://sos-ch-gva-2.exo.io; credentials go in ARTIFACT_STORE_ACCESS_KEY "
                    "and ARTIFACT_STORE_SECRET_KEY",
                )
            )
        self.settings = settings
        self.bucket = parts.netloc
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint = settings.endpoint or "AWS S3"
        self.where = f"artifact store s3://{self.bucket}/{prefix} at {self.endpoint}"
        self._client: S3Client | None = None

    @property
    def client(self) -> S3Client:
        """The boto3 client, made on first use (boto3 is imported only when a store is configured)."""
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise StoreError(
                    Problem(
                        "ARTIFACT_STORE_URL is set but boto3 is not installed",
                        "ARTIFACT_STORE_URL",
                        "install the s3 extra: pip install 'mlops-nocode[s3]'",
                    )
                ) from None
            s = self.settings
            style = s.addressing or ("path" if s.endpoint else "virtual")
            config = Config(
                connect_timeout=s.connect_timeout,
                read_timeout=s.read_timeout,
                retries={"max_attempts": s.attempts, "mode": "standard"},
                s3={"addressing_style": style},
                signature_version="s3v4",
            )
            keys: dict[str, Any] = {}
            if s.access_key is not None and s.secret_key is not None:
                keys = {
                    "aws_access_key_id": s.access_key.get_secret_value(),
                    "aws_secret_access_key": s.secret_key.get_secret_value(),
                }
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=s.endpoint or None, region_name=s.region, config=config, **keys
            )
        return self._client

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def _data_key(self, ref: Ref, rel: str = "") -> str:
        return self.key("artifacts", ref.digest[:2], ref.digest, ref.name + (f"/{rel}" if rel else ""))

    def _manifest_key(self, ref: Ref) -> str:
        return self.key("manifests", ref.digest[:2], ref.digest, f"{ref.name}.json")

    # --- artifacts ---------------------------------------------------------------------------------

    def exists(self, ref: Ref) -> bool:
        return self.get_json(self._manifest_key(ref), 64 * MiB) is not None

    def manifest(self, ref: Ref) -> dict[str, Any]:
        """What `ref` holds: {kind: file|directory, size, files: [[rel, size], ...], dirs: [rel, ...]}."""
        doc = self.get_json(self._manifest_key(ref), 64 * MiB)
        if doc is None:
            raise StoreError(
                Problem(f"artifact {ref} is not in the store", self.where, "run the step that makes it again")
            )
        return doc if isinstance(doc, dict) else {}

    def size(self, ref: Ref) -> int:
        return int(self.manifest(ref).get("size", 0))

    def put_path(self, path: Path, digest: str) -> Ref:
        """Upload the file or folder `path` whose content digest is `digest` (as `store.hash_path` computes
        it); nothing is sent when the store has it already. Big files go in parts (bounded memory)."""
        ref = Ref.of(digest, path.name)
        if self.exists(ref):
            return ref
        files: list[list[Any]] = []
        dirs: list[str] = []
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                rel = p.relative_to(path).as_posix()
                if p.is_dir():
                    dirs.append(rel)
                elif p.is_file() and not p.is_symlink():
                    files.append([rel, p.stat().st_size])
                    self._upload(p, self._data_key(ref, rel))
        else:
            files.append(["", path.stat().st_size])
            self._upload(path, self._data_key(ref))
        kind = "directory" if path.is_dir() else "file"
        doc = {"kind": kind, "size": sum(f[1] for f in files), "files": files, "dirs": dirs}
        self.put_json(self._manifest_key(ref), doc)
        return ref

    def _upload(self, path: Path, key: str) -> None:
        from boto3.s3.transfer import TransferConfig

        s = self.settings
        cfg = TransferConfig(
            multipart_threshold=int(s.multipart_threshold), multipart_chunksize=int(s.multipart_chunk)
        )
        with self._errors(f"upload {key[len(self.prefix) :]}"):
            self.client.upload_file(str(path), self.bucket, key, Config=cfg)

    def open(self, ref: Ref, member: str = "") -> IO[bytes]:
        """A stream of the file artifact `ref` (or of the file `member` of a folder artifact)."""
        if member and not safe_rel(member):
            raise ValueError(f"not a relative path: {member[:80]!r}")
        with self._errors(f"read {ref}"):
            body = self.client.get_object(Bucket=self.bucket, Key=self._data_key(ref, member))["Body"]
        return body  # type: ignore[return-value]

    def download(self, ref: Ref, rel: str, dest: Path, size: int) -> None:
        """Download one object of `ref` to the new file `dest` (in parts, bounded memory), refused
        before a byte is written when the object is not `size` bytes (what its manifest gives)."""
        from boto3.s3.transfer import TransferConfig

        cfg = TransferConfig(multipart_chunksize=int(self.settings.multipart_chunk))
        key = self._data_key(ref, rel)
        with self._errors(f"download {ref}"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except Exception as e:
                if _code(e) in ("NoSuchKey", "404", "NotFound"):
                    raise self._bad(ref, f"{rel or ref.name!r}, named in its manifest, is missing") from None
                raise
            if head["ContentLength"] != size:
                raise self._bad(ref, f"{rel or ref.name!r} does not have the size its manifest gives")
            self.client.download_file(self.bucket, key, str(dest), Config=cfg)

    def get(self, ref: Ref, dest_dir: Path, limits: OutputLimits | None = None) -> Path:
        """Download `ref` into the existing folder `dest_dir` as `dest_dir/<name>` and check its digest.

        The manifest is not trusted: its paths must be relative and plain, and its size, file count and
        depth within the output limits (STEP_OUTPUT_MAX_*), as for what a step leaves behind."""
        lim = limits if limits is not None else load_limits()
        doc = self.manifest(ref)
        kind, raw_files, raw_dirs = doc.get("kind"), doc.get("files"), doc.get("dirs", [])
        files: list[Any] = raw_files if isinstance(raw_files, list) else []
        dirs: list[Any] = raw_dirs if isinstance(raw_dirs, list) else []
        ok = kind in ("file", "directory") and files is raw_files and dirs is raw_dirs
        ok = ok and all(isinstance(f, list) and len(f) == 2 and isinstance(f[1], int) for f in files)
        ok = ok and all(isinstance(f[0], str) for f in files) and all(isinstance(d, str) for d in dirs)
        rels = [str(f[0]) for f in files] + [str(d) for d in dirs] if ok else []
        ok = ok and (all(safe_rel(r) for r in rels) if kind == "directory" else rels == [""])
        if not ok:
            raise self._bad(ref, "its manifest is malformed")
        total = sum(f[1] for f in files)
        if total > lim.step_output_max_bytes or len(rels) > lim.step_output_max_files:
            raise self._bad(ref, "it is larger than STEP_OUTPUT_MAX_BYTES or STEP_OUTPUT_MAX_FILES")
        if any(r.count("/") + 1 > lim.step_output_max_depth for r in rels):
            raise self._bad(ref, "it is nested deeper than STEP_OUTPUT_MAX_DEPTH")
        target = dest_dir / ref.name
        try:
            self._write(ref, kind, files, dirs, target)
            if hash_path(target) != ref.digest:
                raise self._bad(ref, "its content does not match its digest")
        except (OSError, StoreError) as e:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
            if isinstance(e, StoreError):
                raise
            raise self._bad(
                ref, f"it cannot be written here ({type(e).__name__}: {e.strerror or e})"
            ) from None
        return target

    def _write(self, ref: Ref, kind: Any, files: list[Any], dirs: list[Any], target: Path) -> None:
        if kind == "directory":
            target.mkdir()
            for d in sorted(dirs):
                (target / d).mkdir(parents=True, exist_ok=True)
        for rel, size in files:
            dest = target / rel if rel else target
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.download(ref, rel, dest, size)
            if dest.is_symlink() or dest.stat().st_size != size:
                raise self._bad(ref, f"{rel or ref.name!r} does not have the size its manifest gives")

    def _bad(self, ref: Ref, why: str) -> StoreError:
        return StoreError(
            Problem(
                f"artifact {ref} in the store is refused: {why}",
                self.where,
                "remove it from the bucket (its manifest under manifests/) and run the step again",
            )
        )

    # --- small JSON documents (manifests, the step cache index, step results) -----------------------

    def put_json(self, key: str, doc: Any, only_if_absent: bool = False) -> bool:
        """Write a JSON document in one PUT (atomic: readers see all of it or nothing). With
        `only_if_absent`, a conditional put (If-None-Match: *): False when the key existed; a server that
        does not support conditional writes gets a plain PUT."""
        body = json.dumps(doc, sort_keys=True).encode()
        with self._errors(f"write {key[len(self.prefix) :]}"):
            if only_if_absent:
                try:
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
                    return True
                except Exception as e:
                    code = _code(e)
                    if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                        return False
                    if code not in ("NotImplemented", "501"):
                        raise
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        return True

    def get_json(self, key: str, max_bytes: int) -> Any | None:
        """The JSON document at `key`, or None when there is none (or when it is not valid JSON or larger
        than `max_bytes`: the store is not trusted more than a step's files)."""
        with self._errors(f"read {key[len(self.prefix) :]}"):
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=key)
            except Exception as e:
                if _code(e) in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
        with obj["Body"] as body:
            data = body.read(max_bytes + 1)
        if len(data) > max_bytes:
            return None
        with contextlib.suppress(ValueError):
            return json.loads(data)
        return None

    def check(self) -> None:
        """StoreError unless the bucket answers to these credentials."""
        with self._errors("reach the bucket"):
            self.client.head_bucket(Bucket=self.bucket)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Any:
        """Turn botocore's exceptions into a StoreError with a located problem (never a key)."""
        try:
            yield
        except StoreError:
            raise
        except Exception as e:
            problem = self._problem(e, action)
            if problem is None:
                raise
            raise StoreError(problem) from None

    def _problem(self, e: Exception, action: str) -> Problem | None:
        from boto3.exceptions import S3TransferFailedError, S3UploadFailedError
        from botocore import exceptions as bx

        what = f"cannot {action}"
        if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
            return Problem(f"{what}: no credentials for the artifact store", self.where, FIX_CREDENTIALS)
        if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
            return Problem(
                f"{what}: the artifact store does not answer at {self.endpoint} ({type(e).__name__})",
                self.where,
                "check ARTIFACT_STORE_ENDPOINT and that the server is up and reachable from this machine",
            )
        if isinstance(e, bx.ClientError | S3UploadFailedError | S3TransferFailedError):
            code = _code(e)
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AccessDenied", "Forbidden"):
                return Problem(
                    f"{what}: the artifact store refused the credentials ({code})",
                    self.where,
                    FIX_CREDENTIALS,
                )
            if code in ("NoSuchBucket",):
                return Problem(f"{what}: bucket {self.bucket!r} does not exist", self.where, "create it")
            return Problem(f"{what}: the artifact store answered {code}", self.where, "see the server's logs")
        if isinstance(e, bx.BotoCoreError | OSError):
            return Problem(f"{what}: {type(e).__name__}", self.where, "check the ARTIFACT_STORE_* settings")
        return None


def _code(e: Exception) -> str:
    """The S3 error code of a botocore error ('' when it has none); a transfer error's code is read from
    its message, which carries the underlying error's text."""
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    m = re.search(r"\((\w+)\)", str(e))
    return m.group(1) if m else ""


def open_store() -> S3Store | None:
    """The S3 store the ARTIFACT_STORE_* settings name, or None when ARTIFACT_STORE_URL is unset."""
    settings = load_store_settings()
    return S3Store(settings) if settings.url else None
