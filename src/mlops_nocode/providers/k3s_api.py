"""The few Kubernetes API calls the platform makes. From a kubeconfig (the k3s provider, read-only): the
nodes' allocatable sizes (`GET /api/v1/nodes`), a Job's status and whether a namespace exists. From inside
a Runner's pod, with its service account (container steps run as Jobs of their own): create, read and
delete a Job, list its pods and follow a pod's log. Spoken with httpx; the credentials stay in memory
(client key files live only while the TLS context loads them; a service account token is read from its
file at each request, as the kubelet rotates it)."""

from __future__ import annotations

import base64
import os
import re
import ssl
import tempfile
from collections.abc import Generator, Iterator, Mapping
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
    token_file: Path | None = None
    """A service account token file, read at each request (then `token` is None)."""

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


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_access(env: Mapping[str, str], sa_dir: Path = SERVICE_ACCOUNT_DIR, server: str = "") -> Access:
    """The API server and service account of the pod this process runs in (KUBERNETES_SERVICE_HOST and
    _PORT, the token and CA files of `sa_dir`); `server` overrides the address. ProviderError naming what
    is missing."""
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not server and host and port:
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    token, ca = sa_dir / "token", sa_dir / "ca.crt"
    if not server or not token.is_file():
        raise ProviderError(
            "this Runner is not in a Kubernetes pod with a service account "
            f"({'no KUBERNETES_SERVICE_HOST/PORT' if not server else f'no token file {token}'})",
            "container step on a k3s target",
            "run k3s deployments through `mlops run`/the gateway (the rendered Job gives the Runner its "
            "service account), or place the step on the local target",
        )
    if not re.match(r"^https?://[^\s/]+", server):
        raise ProviderError(f"server {server!r} is not a URL", "K8S_API_URL", "give https://HOST:PORT")
    ca_pem = ca.read_bytes() if ca.is_file() else None
    return Access(server.rstrip("/"), ca_pem, False, None, None, None, token_file=token)


class _TokenFile(httpx.Auth):
    def __init__(self, path: Path) -> None:
        self.path = path

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            token = ""
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class KubeApi:
    """A client of one cluster's API server."""

    def __init__(self, access: Access, timeout: float = 15.0) -> None:
        self.access = access
        headers = {"Accept": "application/json"}
        if access.token:
            headers["Authorization"] = f"Bearer {access.token}"
        auth = _TokenFile(access.token_file) if access.token_file else None
        self._http = httpx.Client(
            base_url=access.server, headers=headers, verify=_tls(access), timeout=timeout, auth=auth
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
        return _json_object(r, where)

    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """`method` on `path` with a JSON body: the JSON object answered, None on 404 (a DELETE or GET of
        what is not there). ProviderError for any other failure, with the API's own message."""
        where = f"{self.access.server}{path}"
        try:
            r = self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as e:
            raise ProviderError(
                f"the Kubernetes API cannot be reached ({type(e).__name__})",
                where,
                "check that the cluster's API server runs and is reachable from the Runner's pod",
            ) from None
        if r.status_code == 404:
            return None
        if r.status_code >= 300:
            raise ProviderError(
                f"the Kubernetes API refused {method} (HTTP {r.status_code}: {_message(r)})",
                where,
                "the service account needs the Role the k3s module renders (jobs, pods, pods/log)"
                if r.status_code in (401, 403)
                else "fix what the message names, or check the cluster",
            )
        return _json_object(r, where)

    @contextmanager
    def lines(self, path: str, params: Mapping[str, str]) -> Iterator[Iterator[str]]:
        """The lines of a streamed answer (a followed pod log), while the context is open."""
        with self._http.stream("GET", path, params=params, timeout=httpx.Timeout(15.0, read=None)) as r:
            if r.status_code != 200:
                r.read()
                raise ProviderError(
                    f"the Kubernetes API refused the log (HTTP {r.status_code}: {_message(r)})",
                    f"{self.access.server}{path}",
                    "the service account needs get on pods/log",
                )
            yield r.iter_lines()


def _message(r: httpx.Response) -> str:
    """The `message` of a Kubernetes Status answer (or the start of the body), on one line."""
    try:
        data = r.json()
        text = str(data.get("message", "")) if isinstance(data, dict) else ""
    except ValueError:
        text = ""
    return " ".join((text or r.text[:200]).split())[:300]


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


def _json_object(r: httpx.Response, where: str) -> dict[str, Any]:
    """The JSON object a Kubernetes API answered; ProviderError for anything else."""
    try:
        data = r.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ProviderError(
            "the Kubernetes API answered something else than a JSON object",
            where,
            "check that the server (the kubeconfig's, or the in-cluster one) is a Kubernetes API server",
        )
    return data
