"""The few Kubernetes API calls the k3s provider makes (read-only): the nodes' allocatable sizes
(`GET /api/v1/nodes`), a Job's status (`GET /apis/batch/v1/namespaces/{ns}/jobs/{name}`) and whether a
namespace exists. Spoken with httpx against the server, CA and credentials of a kubeconfig file;
the credentials stay in memory (client key files live only while the TLS context loads them)."""

from __future__ import annotations

import base64
import os
import re
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from mlops_nocode.providers.base import ProviderError

_FIX_KUBECONFIG = (
    "set K3S_KUBECONFIG or KUBECONFIG to a kubeconfig file of the cluster "
    "(on a K3s server: /etc/rancher/k3s/k3s.yaml, with its server address reachable from here)"
)
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SCALE = {
    None: 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip


def quantity(text: str) -> float:
    """A Kubernetes resource quantity ("3500m", "16318412Ki", "1") as a number."""
    m = _QUANTITY.match(str(text).strip())
    if not m:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return float(m[1]) * _SCALE[m[2]]


def kubeconfig_path(env: Mapping[str, str]) -> Path | None:
    """The kubeconfig to use: K3S_KUBECONFIG, else the first existing file of KUBECONFIG, else
    ~/.kube/config, else K3s's /etc/rancher/k3s/k3s.yaml; None when there is none."""
    candidates = [env.get("K3S_KUBECONFIG", "")]
    candidates += env.get("KUBECONFIG", "").split(os.pathsep)
    if env.get("HOME"):
        candidates.append(str(Path(env["HOME"]) / ".kube" / "config"))
    candidates.append("/etc/rancher/k3s/k3s.yaml")
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


@dataclass(frozen=True)
class Access:
    """Where the API server is and how to authenticate (never logged: no __repr__ of the secrets)."""

    server: str
    ca_pem: bytes | None
    insecure: bool
    token: str | None
    cert_pem: bytes | None
    key_pem: bytes | None

    def __repr__(self) -> str:
        return f"Access(server={self.server!r})"


def _b64(d: Mapping[str, Any], key: str, where: str) -> bytes | None:
    if key in d:
        try:
            return base64.b64decode(str(d[key]), validate=True)
        except ValueError:
            raise ProviderError(f"{key} is not base64", where, _FIX_KUBECONFIG) from None
    file_key = key.removesuffix("-data")
    if file_key in d:
        return Path(str(d[file_key])).read_bytes()
    return None


def load_access(path: Path) -> Access:
    """The current context's server and credentials from a kubeconfig file; ProviderError when the
    file cannot be used (what is wrong and how to fix it, never a secret value)."""
    where = f"kubeconfig {path}"
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        name = cfg.get("current-context") or cfg["contexts"][0]["name"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user: dict[str, Any] = (
            next((u["user"] for u in cfg.get("users") or [] if u["name"] == ctx.get("user")), {}) or {}
        )
        server = str(cluster["server"])
        ca = _b64(cluster, "certificate-authority-data", where)
        cert, key = _b64(user, "client-certificate-data", where), _b64(user, "client-key-data", where)
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, StopIteration, IndexError) as e:
        raise ProviderError(
            f"cannot read the cluster and user of the current context ({type(e).__name__})",
            where,
            _FIX_KUBECONFIG,
        ) from None
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(str(user["tokenFile"])).read_text(encoding="utf-8").strip()
    if not token and not (cert and key):
        raise ProviderError(
            "the current context's user has neither a token nor a client certificate and key "
            "(exec and auth-provider plugins are not supported)",
            where,
            "use a kubeconfig with a token or a client certificate (as /etc/rancher/k3s/k3s.yaml)",
        )
    if not re.match(r"^https?://[^\s/]+", server):
        raise ProviderError(f"server {server!r} is not a URL", where, _FIX_KUBECONFIG)
    return Access(server.rstrip("/"), ca, bool(cluster.get("insecure-skip-tls-verify")), token, cert, key)


def _tls(access: Access) -> ssl.SSLContext | bool:
    if access.insecure:
        return False
    ctx = ssl.create_default_context(cadata=access.ca_pem.decode()) if access.ca_pem else True
    if access.cert_pem and access.key_pem:
        ctx = ctx if isinstance(ctx, ssl.SSLContext) else ssl.create_default_context()
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
            for p, data in ((cert, access.cert_pem), (key, access.key_pem)):
                p.touch(mode=0o600)
                p.write_bytes(data)
            ctx.load_cert_chain(cert, key)
    return ctx


class KubeApi:
    """A read-only client of one cluster's API server."""

    def __init__(self, access: Access, timeout: float = 15.0) -> None:
        self.access = access
        headers = {"Accept": "application/json"}
        if access.token:
            headers["Authorization"] = f"Bearer {access.token}"
        self._http = httpx.Client(
            base_url=access.server, headers=headers, verify=_tls(access), timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str) -> dict[str, Any] | None:
        """The JSON object at `path`, or None when the server answers 404."""
        where = f"{self.access.server}{path}"
        try:
            r = self._http.get(path)
        except httpx.HTTPError as e:
            raise ProviderError(
                f"the Kubernetes API cannot be reached ({type(e).__name__})",
                where,
                "check that the cluster runs and its address in the kubeconfig is reachable from here",
            ) from None
        if r.status_code == 404:
            return None
        if r.status_code in (401, 403):
            raise ProviderError(
                f"the Kubernetes API refused the kubeconfig's credentials (HTTP {r.status_code})",
                where,
                "use a kubeconfig whose user may read nodes, namespaces and jobs",
            )
        if r.status_code != 200:
            raise ProviderError(
                f"the Kubernetes API answered HTTP {r.status_code}", where, "retry, or check the cluster"
            )
        try:
            data = r.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ProviderError(
                "the Kubernetes API answered something else than a JSON object",
                where,
                "check that the kubeconfig's server is a Kubernetes API server",
            )
        return data


@contextmanager
def connect(env: Mapping[str, str]) -> Iterator[KubeApi]:
    """A client of the cluster the environment's kubeconfig names; ProviderError when there is none."""
    path = kubeconfig_path(env)
    if path is None:
        raise ProviderError(
            "no kubeconfig found", "environment (K3S_KUBECONFIG, KUBECONFIG)", _FIX_KUBECONFIG
        )
    api = KubeApi(load_access(path))
    try:
        yield api
    finally:
        api.close()
