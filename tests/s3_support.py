"""A real S3-compatible server on loopback for tests: moto's server (`moto_server`, PyPI `moto[server]`) as
its own process, with authentication on (INITIAL_NO_AUTH_ACTION_COUNT: the first requests make an IAM
user and its key pair; every later request must be signed with that pair, so bad credentials fail)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BUCKET = "mlops-test"
SETUP_REQUESTS = 3  # create_user, put_user_policy, create_access_key


class MotoS3:
    """One moto server process; `env()` is what a Runner or a gateway needs to use it."""

    def __init__(self, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
        moto = Path(sys.executable).with_name("moto_server")
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                break
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.05)
        self.access_key, self.secret_key = self._user()
        self.client().create_bucket(Bucket=BUCKET)

    def _user(self) -> tuple[str, str]:
        import boto3

        iam = boto3.client(
            "iam", endpoint_url=self.url, aws_access_key_id="setup", aws_secret_access_key="setup",
            region_name="us-east-1",
        )  # fmt: skip
        iam.create_user(UserName="runner")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="runner", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="runner")["AccessKey"]
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
        )  # fmt: skip

    def env(self, prefix: str, **extra: str) -> dict[str, str]:
        return {
            "ARTIFACT_STORE_URL": f"s3://{BUCKET}/{prefix}",
            "ARTIFACT_STORE_ENDPOINT": self.url,
            "ARTIFACT_STORE_ACCESS_KEY": self.access_key,
            "ARTIFACT_STORE_SECRET_KEY": self.secret_key,
            **extra,
        }

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def s3server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """Per module, so that no server process outlives the tests that use it (other tests check that
    nothing is left running under pytest)."""
    server = MotoS3(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        server.close()
