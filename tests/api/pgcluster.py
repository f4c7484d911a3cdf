"""A throwaway PostgreSQL cluster on 127.0.0.1 started with Debian's binaries (`initdb`, `pg_ctl`).

As root, the binaries run as the `postgres` user (PostgreSQL refuses to run as root) on a data directory
owned by it. Missing binaries are a test failure naming what to install, never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL's server binaries (initdb, pg_ctl) are needed for the PostgreSQL tests: install them with "
    "`apt-get install -y postgresql` (Debian/Ubuntu); .ci/run does it when they are missing"
)


class PostgresUnavailable(RuntimeError):
    """The cluster cannot be started here (the message says what to install or fix)."""


def find_binaries() -> tuple[str, str]:
    """initdb and pg_ctl: from PATH, else from Debian's /usr/lib/postgresql/<version>/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return str(Path(folder, "initdb")), str(Path(folder, "pg_ctl"))
    raise PostgresUnavailable(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One cluster: `start()`, `create_database()` (a fresh database URL per call), `stop()`."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = find_binaries()
        self.port = _free_port()
        self.password = secrets.token_hex(16)
        self.root = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []
        self._count = 0
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root, but there is no `postgres` user to run the server as: "
                    "install Debian's postgresql package (`apt-get install -y postgresql`), which creates it"
                ) from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            runuser = shutil.which("runuser")
            self._as = (
                [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-s", "/bin/sh", "-c"]
            )

    def _run(self, *argv: str) -> None:
        cmd = [*self._as, *argv] if self._as[:1] != ["su"] else [*self._as, " ".join(map(shlex.quote, argv))]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise PostgresUnavailable(
                f"{' '.join(argv[:2])} failed ({proc.returncode}): {proc.stderr.strip()}\n{log}"
            )

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        pwfile.chmod(0o600)
        self._run(
            self.initdb,
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--pwfile",
            str(pwfile),
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        self._count += 1
        name = f"mlops_{self._count}_{secrets.token_hex(3)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
