"""The k3s provider against the Kubernetes API, faked with respx from the documented response shapes in
tests/fixtures/k8s/ (sources named there): offers from the nodes, Job status, bad credentials; state."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mlops_nocode.iac.terraform import TerraformRunner
from mlops_nocode.providers import pricing
from mlops_nocode.providers.base import Provider, ProviderError, Provisioned
from mlops_nocode.providers.k3s import PROVIDER, job_state, terraform_env
from mlops_nocode.providers.k3s_api import load_access, quantity
from tests.providers.k3s_support import deployment, step

SERVER = "https://k3s.example:6443"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "k8s"
JOBS: dict[str, Any] = json.loads((FIXTURES / "jobs.json").read_text())


def _cert() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k3s-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def kubeconfig(folder: Path, user: dict[str, Any] | None = None) -> Path:
    cert, key = _cert()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "default",
        "clusters": [
            {"name": "default", "cluster": {"server": SERVER, "certificate-authority-data": b64(cert)}}
        ],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "users": [
            {
                "name": "default",
                "user": user
                if user is not None
                else {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
            }
        ],
    }
    path = folder / "k3s.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_it_is_a_provider() -> None:
    assert isinstance(PROVIDER, Provider) and PROVIDER.name == "k3s"
    assert PROVIDER.features.gpus and {"python", "command", "http"} == set(PROVIDER.features.runtimes)
    assert "container" in PROVIDER.features.unsupported


def test_shipped_sheet_is_an_example_at_price_zero() -> None:
    offers = PROVIDER.offers()
    assert offers and all(o.price_per_hour == 0 for o in offers)
    assert any(o.gpu_count for o in offers)
    assert "your own" in pricing.load_sheet("k3s").source


def test_quantities() -> None:
    assert quantity("3500m") == 3.5 and quantity("16Gi") == 16 * 2**30 and quantity("1k") == 1000
    assert quantity("16318412Ki") == 16318412 * 1024 and quantity("1e3") == 1000
    with pytest.raises(ValueError):
        quantity("12 Gi")


@respx.mock
def test_refresh_reads_node_sizes_and_keeps_declared_prices(tmp_path: Path, home: Path) -> None:
    nodes = json.loads((FIXTURES / "nodes.json").read_text())
    route = respx.get(f"{SERVER}/api/v1/nodes").mock(return_value=httpx.Response(200, json=nodes))
    offers = PROVIDER.refresh_offers({"K3S_KUBECONFIG": str(kubeconfig(tmp_path, {"token": "t0k"}))})
    assert route.calls.last.request.headers["authorization"] == "Bearer t0k"
    by_id = {o.id: o for o in offers}
    gpu = by_id["gpu-1xL4"]
    assert (gpu.gpu_count, gpu.gpu_type, gpu.vcpus, gpu.memory_gib, gpu.region) == (
        1,
        "L4",
        7.9,
        32.0,
        "ch-gva-2",
    )
    assert gpu.extra["nodes"] == 2 and gpu.extra["node_selector"] == {
        "node.kubernetes.io/instance-type": "gpu-1xL4"
    }
    assert round(gpu.gpu_memory_gib, 1) == 22.5
    cpu = next(o for o in offers if not o.gpu_count)
    assert cpu.vcpus == 4 and cpu.region == "ch-gva-2" and "node_selector" not in cpu.extra
    assert not any(o.vcpus == 64 for o in offers), "an unschedulable node is no offer"
    sheet = pricing.load_sheet("k3s")
    assert pricing.sheet_path("k3s").is_relative_to(home) and sheet.source == f"{SERVER}/api/v1/nodes"
    assert {o.id for o in sheet.offers} == set(by_id)


@respx.mock
def test_refresh_with_a_client_certificate_and_refused_credentials(tmp_path: Path) -> None:
    respx.get(f"{SERVER}/api/v1/nodes").mock(return_value=httpx.Response(401, json=JOBS["unauthorized"]))
    before = pricing.load_sheet("k3s")
    with pytest.raises(ProviderError) as e:
        PROVIDER.refresh_offers({"K3S_KUBECONFIG": str(kubeconfig(tmp_path))})
    assert "refused" in e.value.what and e.value.fix and "401" in e.value.what
    assert pricing.load_sheet("k3s") == before, "a failed refresh changes nothing"


@respx.mock
@pytest.mark.parametrize(
    "name,want",
    [("pending", "pending"), ("running", "running"), ("complete", "exited"), ("failed", "exited")],
)
def test_status_from_the_job(tmp_path: Path, name: str, want: str) -> None:
    respx.get(f"{SERVER}/apis/batch/v1/namespaces/ns-1/jobs/runner").mock(
        return_value=httpx.Response(200, json=JOBS[name])
    )
    p = Provisioned("k3s-0", "k3s", (), None, {"namespace": "ns-1", "job": "runner"})
    assert PROVIDER.status(p, {"KUBECONFIG": str(kubeconfig(tmp_path, {"token": "t"}))}) == want
    assert job_state(JOBS[name]) == want


@respx.mock
@pytest.mark.parametrize(
    "ns_answer,want",
    [("namespace_active", "lost"), ("namespace_terminating", "destroyed"), (None, "destroyed")],
)
def test_status_when_the_job_is_gone(tmp_path: Path, ns_answer: str | None, want: str) -> None:
    respx.get(f"{SERVER}/apis/batch/v1/namespaces/ns-1/jobs/runner").mock(
        return_value=httpx.Response(404, json=JOBS["not_found"])
    )
    respx.get(f"{SERVER}/api/v1/namespaces/ns-1").mock(
        return_value=httpx.Response(200, json=JOBS[ns_answer]) if ns_answer else httpx.Response(404)
    )
    p = Provisioned("k3s-0", "k3s", (), None, {"namespace": "ns-1", "job": "runner"})
    env = {"KUBECONFIG": str(kubeconfig(tmp_path, {"token": "t"}))}
    assert PROVIDER.status(p, env) == want
    if want == "lost":
        with pytest.raises(ProviderError):
            PROVIDER.launch(p, None, env)  # type: ignore[arg-type]


@respx.mock
def test_unreachable_cluster_is_a_located_error(tmp_path: Path) -> None:
    respx.get(f"{SERVER}/apis/batch/v1/namespaces/ns-1/jobs/runner").mock(
        side_effect=httpx.ConnectError("no")
    )
    p = Provisioned("k3s-0", "k3s", (), None, {"namespace": "ns-1", "job": "runner"})
    with pytest.raises(ProviderError) as e:
        PROVIDER.status(p, {"KUBECONFIG": str(kubeconfig(tmp_path, {"token": "t"}))})
    assert SERVER in e.value.where and "reached" in e.value.what


def test_unusable_kubeconfigs_name_the_file_never_the_secret(tmp_path: Path) -> None:
    exec_user = kubeconfig(tmp_path, {"exec": {"command": "aws", "args": ["SECRET-ARG"]}})
    with pytest.raises(ProviderError) as e:
        load_access(exec_user)
    assert str(exec_user) in e.value.where and "SECRET" not in str(e.value.what) + e.value.fix
    junk = tmp_path / "junk.yaml"
    junk.write_text("token: SECRET-VALUE\n: [")
    with pytest.raises(ProviderError) as e:
        load_access(junk)
    assert "SECRET" not in e.value.what + e.value.where + e.value.fix
    assert "SECRET" not in repr(load_access(kubeconfig(tmp_path, {"token": "SECRET-T"})))


def test_state_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TerraformRunner, "find_binary", staticmethod(lambda env=None: None))
    s = PROVIDER.state({"HOME": str(tmp_path)})
    assert not s.credentials and not s.ready and len(s.missing) == 2
    assert any("KUBECONFIG" in m for m in s.missing) and any("terraform" in m for m in s.missing)
    monkeypatch.setattr(TerraformRunner, "find_binary", staticmethod(lambda env=None: "/usr/bin/terraform"))
    s = PROVIDER.state({"KUBECONFIG": f"/nope{':'}{kubeconfig(tmp_path)}"})
    assert s.ready and s.tools["terraform"] == "/usr/bin/terraform"


def test_provision_refuses_without_terraform_and_passes_secrets_only_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = kubeconfig(tmp_path, {"token": "t"})
    env = {"KUBECONFIG": str(cfg), "MLOPS_RUN_TOKEN": "run-SECRET", "HF_TOKEN": "hf-SECRET", "PATH": "/bin"}
    b = PROVIDER.render(deployment([step(secrets=("HF_TOKEN",))]))
    tf = terraform_env(b, env)
    assert tf["KUBE_CONFIG_PATH"] == str(cfg) and tf["TF_VAR_run_token"] == "run-SECRET"
    assert json.loads(tf["TF_VAR_step_secrets"]) == {"HF_TOKEN": "hf-SECRET"}
    assert "MLOPS_RUN_TOKEN" not in tf and "HF_TOKEN" not in tf
    with pytest.raises(ProviderError) as e:
        terraform_env(b, {k: v for k, v in env.items() if k != "HF_TOKEN"})
    assert "HF_TOKEN" in e.value.what
    monkeypatch.setattr(TerraformRunner, "find_binary", staticmethod(lambda env=None: None))
    work = tmp_path / "work"
    with pytest.raises(ProviderError) as e:
        PROVIDER.provision(b, work, env)
    assert "terraform" in e.value.what and "install" in e.value.fix and not work.exists()


def test_status_refuses_a_tampered_handle(tmp_path: Path) -> None:
    """A recorded handle never builds an API path outside the run's namespace."""
    env = {"KUBECONFIG": str(kubeconfig(tmp_path, {"token": "t"}))}
    for handle in ({"namespace": "../../api/v1/secrets"}, {"namespace": "ns-1", "job": "x/../../y"}):
        with pytest.raises(ProviderError) as e:
            PROVIDER.status(Provisioned("k3s-0", "k3s", (), None, handle), env)
        assert "handle" in e.value.where


def test_real_terraform_provision_fails_cleanly_offline(tmp_path: Path) -> None:
    """The real TerraformRunner: the kubernetes provider cannot be downloaded here, so init fails; the
    error is located, names no secret value, and no file of the working directory holds one."""
    from tests.providers.k3s_support import terraform_binary

    tf = terraform_binary()
    cfg = kubeconfig(tmp_path, {"token": "kube-SECRET-1"})
    env = {"KUBECONFIG": str(cfg), "MLOPS_RUN_TOKEN": "run-SECRET-2", "HF_TOKEN": "hf-SECRET-3",
           "PATH": str(Path(tf).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path)}  # fmt: skip
    b = PROVIDER.render(deployment([step(secrets=("HF_TOKEN",))]))
    work = tmp_path / "work"
    with pytest.raises(ProviderError) as e:
        PROVIDER.provision(b, work, env)
    said = f"{e.value.what} {e.value.where} {e.value.fix}"
    assert "SECRET" not in said and e.value.fix
    assert (work / "main.tf.json").is_file()
    for f in work.rglob("*"):
        if f.is_file():
            assert b"SECRET" not in f.read_bytes(), f
    PROVIDER.teardown(Provisioned(b.deployment, "k3s", b.resources, str(work)), env)  # nothing to destroy
