"""Gateway and worker settings, read from the environment (pydantic-settings); nothing happens at import.

Environment variables (unprefixed, as in the blueprint): DEBUG, SECRET_KEY, DATABASE_URL, HOST, PORT,
WORKERS, N8N_API_URL, N8N_API_KEY, WINDMILL_API_URL, WINDMILL_API_KEY, WEBHOOK_ALLOWED_HOSTS, plus the
tuning knobs below. The Runner's own settings live beside it, read by every Runner (CLI or gateway):
runtime/limits.py (step output limits) and runtime/throttle.py (CPU throttler).
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode import __version__
from mlops_nocode.catalogue.home import mlops_home

SECRET_KEY_FILE = "secret_key"
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_GUESSES_LOG10 = 25  # zxcvbn's estimate, ~83 bits; random keys of 32+ characters score 28+
# found in a key (case and punctuation ignored), they mark a placeholder or a hand-made key
PLACEHOLDER_WORDS = ("changeme", "changethis", "replaceme", "secret", "password", "example", "placeholder",
                     "insecure", "sample")  # fmt: skip
PROJECT_WORDS = ("mlops", "nocode", "mlops-nocode", "gateway", "platform")  # what a hand-made key may reuse
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
    session_ttl_seconds: int = Field(
        default=8 * 3600, ge=60, le=30 * 24 * 3600, description="absolute life of a browser session"
    )
    session_idle_seconds: int = Field(
        default=3600,
        ge=0,
        le=30 * 24 * 3600,
        description="a browser session ends after this idle time; 0: never",
    )
    session_scopes: str = Field(
        default="read,write", description="scopes of a browser session when its sign-in asks for none"
    )
    csrf_trusted_origins: str = Field(
        default="", description="comma list of other origins (https://ui.example.org) allowed cookie writes"
    )
    ui_dir: Path | None = Field(
        default=None, description="the built no-code UI (index.html + assets/); default: the package's own"
    )
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
    provider_modules: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {"NAME": "python.module"}: modules whose PROVIDER adds or replaces a provider',
    )
    deployment_poll_seconds: float = Field(
        default=2.0, gt=0, description="how often a run with remote deployments asks their status"
    )
    try_sample_max_bytes: int = Field(
        default=256 * 1024,
        ge=1,
        le=64 * 1024 * 1024,
        description="bytes of sample inputs a playbook test run (POST /api/v1/playbooks/try) may carry",
    )
    deployment_input_wait: float = Field(
        default=6 * 3600.0, gt=0, description="seconds a Runner waits for an input made by another deployment"
    )
    runner_image: str = Field(
        default=f"mlops-nocode-runner:{__version__}",
        pattern=r"^[a-z0-9][A-Za-z0-9._/:@-]{0,254}$",
        description="image remote targets run `mlops execute` in (deploy/docker/runner.Dockerfile)",
    )
    runner_image_cuda: str = Field(
        default=f"mlops-nocode-runner:{__version__}-cuda",
        pattern=r"^[a-z0-9][A-Za-z0-9._/:@-]{0,254}$",
        description="the same for GPU steps (deploy/docker/runner-cuda.Dockerfile)",
    )
    llm_proxy_retries: int = Field(
        default=2, ge=0, le=10, description="retries of a failed model call inside `mlops llm up`'s proxy"
    )
    llm_proxy_ready_timeout: float = Field(
        default=120.0, gt=0, description="seconds `mlops llm up` waits for the proxy's readiness probe"
    )
    # monitoring (docs/MONITORING.md)
    metrics_enabled: bool = Field(default=True, description="serve /metrics and count HTTP requests")
    monitoring_budget_per_hour: float | None = Field(
        default=None, ge=0, description="USD/h exported as mlops_cost_budget_per_hour_usd (alert: above it)"
    )
    monitoring_metric_min: dict[str, float] = Field(
        default_factory=dict,
        description='JSON {"accuracy": 0.9}: lowest acceptable step metric values (mlops_step_metric_min)',
    )
    worker_heartbeat_seconds: float = Field(
        default=5.0, gt=0, le=300, description="how often each worker loop records that it is alive"
    )
    worker_live_after: float = Field(
        default=30.0, gt=0, description="a worker counts as live while its last beat is younger than this"
    )
    # e-mail notification targets (runs/notify_mail.py); unset SMTP_HOST: email targets are refused
    smtp_host: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9.:\[\]-]{1,253}$", description="SMTP server; unset: no e-mail"
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="587 (STARTTLS), 465 (SMTP_SSL), 25")
    smtp_user: str | None = Field(default=None, description="log in as this user (with SMTP_PASSWORD)")
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(
        default="mlops@localhost",
        pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$",
        description="the From address of notification mails",
    )
    smtp_starttls: bool = Field(default=True, description="upgrade the connection with STARTTLS (required)")
    smtp_ssl: bool = Field(default=False, description="connect with TLS from the start (port 465)")
    smtp_timeout: float = Field(default=10.0, gt=0, description="seconds per SMTP operation")
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle to verify the SMTP server with")

    prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="a Prometheus scraping this gateway: the UI's charts query it (else the gateway's DB)",
    )
    prometheus_timeout: float = Field(
        default=5.0, gt=0, le=60, description="seconds one chart query to PROMETHEUS_URL may take"
    )
    prometheus_min_step: int = Field(
        default=15, ge=1, le=3600, description="shortest step of the UI charts (s); >= scrape interval"
    )

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _allowed_hosts_syntax(cls, value: str) -> str:
        allowed_host_entries(value)
        return value

    @field_validator("session_scopes")
    @classmethod
    def _session_scopes(cls, value: str) -> str:
        session_scope_list(value)
        return value

    @field_validator("csrf_trusted_origins")
    @classmethod
    def _trusted_origins(cls, value: str) -> str:
        trusted_origin_list(value)
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


def session_scope_list(value: str) -> list[str]:
    """SESSION_SCOPES as a list (read, write, admin); a ValueError says what is wrong."""
    scopes = [s.strip().lower() for s in value.split(",") if s.strip()]
    bad = [s for s in scopes if s not in ("read", "write", "admin")]
    if bad or not scopes:
        raise ValueError(f"SESSION_SCOPES {value!r}: give some of read, write, admin (comma-separated)")
    return scopes


_ORIGIN = re.compile(r"^https?://[^\s/?#@]+$")


def trusted_origin_list(value: str) -> list[str]:
    """CSRF_TRUSTED_ORIGINS as normalised origins (`scheme://host[:port]`, lower case, no path)."""
    origins = [o.strip().lower().rstrip("/") for o in value.split(",") if o.strip()]
    for o in origins:
        if not _ORIGIN.match(o):
            raise ValueError(
                f"CSRF_TRUSTED_ORIGINS: {o!r} is not an origin; write scheme://host[:port], e.g. "
                "https://ui.example.org"
            )
    return origins


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


def weak_secret(value: str) -> str | None:
    """Why `value` is too weak to sign tokens beyond loopback, or None when it is strong.

    Refused: shorter than MIN_SECRET_KEY_LENGTH; a well-known value, or one with a placeholder word in it
    (`changeme`, `secret`, `example`...); and whatever zxcvbn (Dropbox's password strength estimator: it
    finds dictionary words, repeats, sequences, keyboard walks and dates) estimates at fewer than
    10^MIN_SECRET_KEY_GUESSES_LOG10 guesses, judged on the first 72 characters (zxcvbn's limit). A random
    key of 32 hex digits (128 bits) estimates at 10^28 or more.
    """
    if len(value) < MIN_SECRET_KEY_LENGTH:
        return f"it has {len(value)} characters, fewer than {MIN_SECRET_KEY_LENGTH}"
    folded = value.strip().lower()
    if folded in WELL_KNOWN_SECRET_KEYS:
        return "it is a well-known value from documentation or templates"
    squeezed = re.sub(r"[^a-z0-9]", "", folded)
    word = next((w for w in PLACEHOLDER_WORDS if w in squeezed), None)
    if word is not None:
        return f"it contains the placeholder word {word!r}"
    from zxcvbn import zxcvbn  # imported here: only a gateway binding beyond loopback needs it

    guesses = float(zxcvbn(value[:72], user_inputs=list(PROJECT_WORDS))["guesses_log10"])
    if guesses < MIN_SECRET_KEY_GUESSES_LOG10:
        return (
            "it is guessable: made of words, repeats, sequences or keyboard patterns "
            f"(about 10^{guesses:.0f} guesses, fewer than 10^{MIN_SECRET_KEY_GUESSES_LOG10})"
        )
    return None


def resolve_secret_key(settings: Settings) -> str:
    """The key that signs tokens.

    SECRET_KEY when set (it must be strong beyond loopback); otherwise, on loopback only, the key kept in
    MLOPS_HOME/secret_key (mode 0600), generated on first use. Binding beyond loopback without a strong
    SECRET_KEY is refused with a SettingsError.
    """
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        why = None if settings.loopback else weak_secret(value)
        if why is not None:
            raise SettingsError(
                f"SECRET_KEY is too weak to listen on {settings.host}: {why}; it must be random, at least "
                f"{MIN_SECRET_KEY_LENGTH} characters; "
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
