"""http steps over TLS against a real HTTPS server on loopback: the certificate is verified against the
URL's host name although the connection goes to the address the host policy checked, and a private
authority is trusted only through HTTP_STEP_CA_BUNDLE."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.runtime.http_server import Answer, Server, serve
from tests.runtime.test_http import playbook, run


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlops test CA")])
    ca = _cert("mlops test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("localhost", key, ca_name, ca_key, ca=False)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    for server in serve(context):
        yield server, tmp_path / "ca.pem"


def test_a_private_authority_is_trusted_only_through_the_setting(
    tls_server: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls_server
    server.on("/x", Answer(200, b'{"tls": true}'))
    port = server.httpd.server_address[1]
    pb = playbook(f"url: https://localhost:{port}/x\noutput: body\nretries: 0")
    r, _ = run(pb)
    assert r.status == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in (r.steps["call"].error or "")
    monkeypatch.setenv("HTTP_STEP_CA_BUNDLE", str(ca))
    r, _ = run(pb)
    assert r.status == "succeeded", r.summary()
    assert r.steps["call"].outputs["body"]["value"] == {"tls": True}
    # the same server by its address: the certificate names localhost only, so it does not match
    r, _ = run(playbook(f"url: https://127.0.0.1:{port}/x\noutput: body\nretries: 0"))
    assert r.status == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in (r.steps["call"].error or ""), r.steps["call"].error


def test_an_unreadable_ca_bundle_fails_with_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_STEP_CA_BUNDLE", str(tmp_path / "missing.pem"))
    r, _ = run(playbook("url: https://localhost/x\noutput: body"))
    assert r.status == "failed"
    assert f"HTTP_STEP_CA_BUNDLE={tmp_path / 'missing.pem'}: cannot load it" in (r.steps["call"].error or "")
