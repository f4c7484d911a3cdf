"""Gateway and worker settings, read from the environment (pydantic-settings); nothing happens at import.

Environment variables (unprefixed, as in the blueprint): DEBUG, SECRET_KEY, DATABASE_URL, HOST, PORT,
WORKERS, N8N_API_URL, N8N_API_KEY, WINDMILL_API_URL, WINDMILL_API_KEY, WEBHOOK_ALLOWED_HOSTS, plus the
tuning knobs below.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.catalogue.home import mlops_home

SECRET_KEY_FILE = "secret_key"
MIN_SECRET_KEY_LENGTH = 32
# Values copied from tutorials and templates: never accepted on a reachable address.
WELL_KNOWN_SECRET_KEYS = frozenset(
    {
        "changeme",
        "change-me",
        "changethis",
        "secret",
        "secret-key",
        "your-secret-key",
        "supersecret",
        "development",
        "dev",
        "test",
        "password",
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",  # FastAPI docs example
    }
)


class SettingsError(ValueError):
    """Settings that cannot be used as they are (the message says what to change)."""


class Settings(BaseSettings):
    """Everything the gateway and its workers read from the environment."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    debug: bool = False
    secret_key: SecretStr | None = None
    database_url: str | None = Field(default=None, description="default: sqlite:///MLOPS_HOME/mlops.db")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=2, ge=0, le=64, description="worker threads inside `mlops up`")
    mlops_home: Path | None = None
    n8n_api_url: str | None = None
    n8n_api_key: SecretStr | None = None
    windmill_api_url: str | None = None
    windmill_api_key: SecretStr | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_spec_depth: int = Field(
        default=32, ge=4, le=200, description="levels of nesting in specs and launch values (spec/limits.py)"
    )
    token_ttl_seconds: int = Field(default=3600, ge=10, le=7 * 24 * 3600)
    heartbeat_seconds: float = Field(default=1.0, gt=0)
    run_stale_after: float = Field(default=15.0, gt=0, description="seconds without heartbeat = dead")
    max_run_attempts: int = Field(default=3, ge=1, description="claims of one run before giving up")
    poll_seconds: float = Field(default=0.25, gt=0)
    webhook_attempts: int = Field(default=5, ge=1, le=20, description="tries per webhook delivery")
    webhook_backoff: float = Field(default=1.0, gt=0, description="seconds before the 2nd try; doubles")
    webhook_timeout: float = Field(default=10.0, gt=0)
    gateway_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="where Runners report run events (default: http://HOST:PORT, 127.0.0.1 for 0.0.0.0)",
    )
    run_token_ttl: int = Field(default=24 * 3600, ge=60, description="seconds a run token is valid")
    webhook_lease: float = Field(
        default=60.0, gt=0, description="seconds a dispatcher owns a delivery it claimed; > WEBHOOK_TIMEOUT"
    )
    webhook_allowed_hosts: str = Field(
        default="*", description="comma list of hostnames (*.suffix allowed), IPs, CIDRs, or *"
    )

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _allowed_hosts_syntax(cls, value: str) -> str:
        allowed_host_entries(value)
        return value

    @model_validator(mode="after")
    def _lease_outlives_attempt(self) -> Settings:
        if self.webhook_lease <= self.webhook_timeout:
            raise ValueError(
                f"WEBHOOK_LEASE ({self.webhook_lease:g}s) must be longer than WEBHOOK_TIMEOUT "
                f"({self.webhook_timeout:g}s), or a slow delivery would be sent twice; raise WEBHOOK_LEASE"
            )
        return self

    @property
    def home(self) -> Path:
        """MLOPS_HOME (created on first use)."""
        if self.mlops_home is not None:
            self.mlops_home.mkdir(mode=0o700, parents=True, exist_ok=True)
            return self.mlops_home
        return mlops_home()

    @property
    def db_url(self) -> str:
        """DATABASE_URL, or the SQLite file under MLOPS_HOME."""
        return self.database_url or f"sqlite:///{self.home / 'mlops.db'}"

    @property
    def report_url(self) -> str:
        """The gateway's base URL as the Runners of this process reach it."""
        if self.gateway_url:
            return self.gateway_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """Whether the gateway binds only to this machine."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_HOSTNAME = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def allowed_host_entries(value: str) -> list[str]:
    """WEBHOOK_ALLOWED_HOSTS split into normalised entries: `*`, hostnames (`*.example.org` for its
    subdomains), IP addresses or CIDRs. A ValueError names the first invalid entry."""
    entries = [e.strip().lower().rstrip(".") for e in value.split(",") if e.strip()]
    if not entries:
        raise ValueError(
            "WEBHOOK_ALLOWED_HOSTS is empty: give `*`, hostnames, IPs or CIDRs (comma-separated)"
        )
    for entry in entries:
        if entry == "*" or _HOSTNAME.match(entry):
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"WEBHOOK_ALLOWED_HOSTS: {entry!r} is neither `*`, a hostname (`*.example.org` allowed), an "
                "IP address nor a CIDR (10.0.0.0/8); fix or remove it"
            ) from None
    return entries


def weak_secret(value: str) -> bool:
    """Too short, or a value known from documentation and templates."""
    return len(value) < MIN_SECRET_KEY_LENGTH or value.strip().lower() in WELL_KNOWN_SECRET_KEYS


def resolve_secret_key(settings: Settings) -> str:
    """The key that signs tokens.

    SECRET_KEY when set (it must be strong beyond loopback); otherwise, on loopback only, the key kept in
    MLOPS_HOME/secret_key (mode 0600), generated on first use. Binding beyond loopback without a strong
    SECRET_KEY is refused with a SettingsError.
    """
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        if not settings.loopback and weak_secret(value):
            raise SettingsError(
                f"SECRET_KEY is too weak to listen on {settings.host} (it must be at least "
                f"{MIN_SECRET_KEY_LENGTH} characters and not a well-known value); "
                'generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        if not value:
            raise SettingsError("SECRET_KEY is empty: unset it or give a strong value")
        return value
    if not settings.loopback:
        raise SettingsError(
            f"SECRET_KEY is not set: refusing to listen on {settings.host} beyond loopback; set SECRET_KEY "
            "to a strong random value, or bind to 127.0.0.1"
        )
    return _stored_key(settings.home / SECRET_KEY_FILE)


def _stored_key(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(48)
    write_private(path, value + "\n")
    return value


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
