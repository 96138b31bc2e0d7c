"""One settings object, from the environment (prefix ``TOMBOLA_``), with embedded defaults.

Everything of the embedded mode lives under ``TOMBOLA_HOME`` (default ``./var``): the two
SQLite databases, the SoftHSM2 token (``hsm/``), reports. Production sets ``TOMBOLA_CORE_DB_URL``
and ``TOMBOLA_BUSINESS_DB_URL`` to PostgreSQL URLs (``postgresql+psycopg://...``) and
``TOMBOLA_HSM_MODULE``, ``TOMBOLA_HSM_TOKEN_LABEL`` and ``TOMBOLA_HSM_PIN_FILE`` to its PKCS#11
module (see ``docs/hsm-and-rng.md``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gli_core.api import HsmConfig
from server.errors import NoHome


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOMBOLA_", env_file=None, extra="ignore")

    home: Path = Path("var")
    core_db_url: str = ""
    business_db_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""

    organisation_name: str = "Demo Charity"
    licence_number: str = "DEMO-0001"

    grant_size: int = Field(default=1000, ge=1)
    lease_s: int = Field(default=8 * 3600, ge=60)
    max_numbers_per_device: int = Field(default=10_000, ge=1)
    topup_threshold: float = Field(default=0.8, gt=0, le=1)
    enrollment_code_ttl_s: int = Field(default=24 * 3600, ge=60)
    clock_skew_ms: int = Field(default=5 * 60 * 1000, ge=0)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    admin_token: str = ""
    # Accounts (docs/accounts.md): the HS256 key of access tokens (TOMBOLA_JWT_KEY; else var/jwt-key,
    # made on first use) and the sender of mails (var/outbox/ in embedded mode, server/mail.py).
    jwt_key: str = Field(default="", repr=False)
    mail_from: str = "tombola@localhost"
    #: origins admitted by CORS, comma-separated (TOMBOLA_CORS_ORIGINS); empty: CORS off
    cors_origins: str = ""
    #: send Strict-Transport-Security on every response (set it when a TLS proxy fronts the server
    #: without forwarding the scheme); over https the header is sent anyway
    hsts: bool = False
    #: where rate limits are counted so every server process sees them: ``database`` (the business
    #: database), a ``limits`` storage URI (``redis://host:6379``), ``memory://`` (one process), or
    #: ``auto``: the database on PostgreSQL, memory on SQLite (served by one process)
    rate_limit_storage: str = "auto"
    #: what one client address may ask of the public ticket check (a ``limits`` rate)
    ticket_check_rate: str = "60/minute"
    #: what one authenticated principal (a person or an API token) may call (a ``limits`` rate)
    user_rate: str = "1200/minute"
    #: logins and password-reset requests per client address (TOMBOLA_LOGIN_RATE), in the shared store
    login_rate: str = "30/minute"
    # Online sales (docs/online-sales.md, docs/operations.md): Stripe's secret API key and the
    # signing secret of the webhook endpoint; both empty: online sales answer online_sales_unconfigured.
    # stripe_api_base: another address of Stripe's API (a local stand-in in tests); "" = Stripe's.
    stripe_secret_key: str = Field(default="", repr=False)
    stripe_webhook_secret: str = Field(default="", repr=False)
    stripe_api_base: str = ""
    #: tickets one customer may buy online per raffle when the raffle sets no purchase_limit
    online_purchase_limit: int = Field(default=100, ge=1, le=100_000)

    # The core's PKCS#11 token (TOMBOLA_HSM_*); the PIN comes from the environment or a secret
    # file, and in embedded mode from hsm_dir/pin, which `tombola init` generates.
    hsm_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    hsm_token_label: str = "tombola"  # noqa: S105 - a label, not a secret
    hsm_pin: str = Field(default="", repr=False)
    hsm_pin_file: Path | None = None
    hsm_dir: Path | None = None  # the embedded SoftHSM2 token; default home/"hsm"

    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    def resolved_core_url(self) -> str:
        return self.core_db_url or f"sqlite:///{(self.home / 'core.db').resolve()}"

    def resolved_business_url(self) -> str:
        return self.business_db_url or f"sqlite:///{(self.home / 'business.db').resolve()}"

    def hsm_config(self) -> HsmConfig:
        """The core's token settings (``hsm_dir`` defaults to ``home/hsm`` for SoftHSM2)."""
        return HsmConfig.for_installation(
            home=self.home,
            module=self.hsm_module,
            token_label=self.hsm_token_label,
            pin=self.hsm_pin or None,
            pin_file=self.hsm_pin_file,
            hsm_dir=self.hsm_dir,
        )

    def require_home(self) -> None:
        """Refuse (``no_home``) when ``home`` is not a directory: only ``tombola init`` makes one.

        Run where there is no installation, a command would otherwise create an empty ``var/``
        and fail later on something less telling (no HSM PIN); it changes nothing instead.

        Raises:
            NoHome: ``home`` does not exist or is not a directory.
        """
        if self.home.is_dir():
            return
        where = self.home.resolve()
        what = "is not a directory" if self.home.exists() else "does not exist"
        raise NoHome(
            f"there is no Tombola home here: {where} {what} (TOMBOLA_HOME, default ./var). "
            "Make one with `tombola init` in this folder, or set TOMBOLA_HOME to an installation's home; "
            "nothing was created",
            home=str(where),
        )

    @property
    def key_dir(self) -> Path:
        return self.home / "keys"

    @property
    def report_dir(self) -> Path:
        return self.home / "reports"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin-token"

    @property
    def outbox_dir(self) -> Path:
        """Where the embedded mailer writes each outgoing message (``server/mail.py``)."""
        return self.home / "outbox"

    @property
    def jwt_key_file(self) -> Path:
        return self.home / "jwt-key"

    def effective_admin_token(self) -> str:
        """``TOMBOLA_ADMIN_TOKEN``, else the token ``tombola init`` wrote to ``var/admin-token``."""
        if self.admin_token:
            return self.admin_token
        try:
            return self.admin_token_file.read_text().strip()
        except FileNotFoundError:
            return ""

    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
