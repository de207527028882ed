"""Settings from environment variables (pydantic-settings). One object per process,
created in each service's composition root and passed down; never a module global."""

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from yarl import URL


def with_password(urls: str, password: str | None) -> str:
    """``urls`` (one URL, or several separated by commas) with ``password`` put into each
    one that names a user but no password; unchanged without a password."""
    if not password:
        return urls
    out = []
    for text in (u.strip() for u in urls.split(",")):
        url = URL(text)
        out.append(str(url.with_password(password)) if url.user and url.password is None else text)
    return ",".join(out)


def url_list(urls: str) -> list[str]:
    """The URLs of a comma-separated setting (AMQP_URL may name every node of a cluster)."""
    return [u.strip() for u in urls.split(",") if u.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # Passwords kept apart from the URLs (docker compose: var/secrets.env holds the passwords,
    # docker-compose.yml the URLs). Each one is put into its URLs that name a user but no
    # password; a URL's own password wins. None has a default.
    #: The service role's password (DATABASE_URL, QUERY_DATABASE_URL).
    database_password: str | None = None
    #: The schema owner's password (DATABASE_OWNER_URL); POSTGRES_PASSWORD is the official image's name.
    database_owner_password: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_OWNER_PASSWORD", "POSTGRES_PASSWORD")
    )
    #: The broker user's password (every URL of AMQP_URL).
    amqp_password: str | None = None

    #: What the services connect with: a role that is no superuser, has no BYPASSRLS and owns
    #: nothing, so row-level security applies to every statement (docs/security.md).
    database_url: str = "postgresql://partsemble_app@127.0.0.1:5432/partsemble"
    #: The schema owner: ``python -m shared.migrate`` and the operator commands use it; it
    #: creates the role of DATABASE_URL if missing and grants it what the services need.
    database_owner_url: str = "postgresql://postgres@127.0.0.1:5432/partsemble"
    #: Where the query service reads (a streaming replica of DATABASE_URL's database, as the
    #: service role); unset: DATABASE_URL. What must read its own writes still goes to the
    #: primary: API-key checks, the event-status endpoint, the rollup folder (docs/operations.md).
    query_database_url: str | None = None
    #: One broker URL, or every node of a cluster separated by commas: connections go to the
    #: first that answers and, when it is lost, to the next (shared/broker.py).
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    #: Names of the broker objects; tests set their own prefix.
    broker_prefix: str = "partsemble"

    ingest_port: int = 8081
    query_port: int = 8082
    costing_port: int = 8083
    bind_host: str = "127.0.0.1"
    #: The ingest service's origin as a browser reaches it: the Sales tab (query service) sends
    #: manual sales and QuickBooks connection requests there (GET /sales/config.json).
    ingest_public_url: str = "http://127.0.0.1:8081"

    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_level: str = "INFO"

    #: Origins (comma-separated) whose pages may call the ingest API from a browser (CORS):
    #: the Sales tab served by the query service. Empty: no CORS headers at all.
    cors_allowed_origins: str = ""

    #: Largest request body the HTTP services accept (bytes).
    max_body_bytes: int = 1_048_576

    #: Requests per minute each API key may make to an HTTP API (ingest /api/v1/, query
    #: /api/v1/), per process: with N processes behind a balancer a key gets up to N times
    #: this. 0 disables the limit. Health checks, webhooks and the OpenAPI document are not
    #: limited. Over the limit: 429 ``rate_limited`` with ``Retry-After`` (seconds).
    api_rate_limit_per_minute: int = Field(default=6000, ge=0)
    #: Requests a key may make at once (the token bucket's size); unset: a minute's worth
    #: (``api_rate_limit_per_minute``). Refilled at ``api_rate_limit_per_minute`` / 60 per second.
    api_rate_limit_burst: int | None = Field(default=None, ge=1)
    #: Seconds an authenticated API key is reused without the lookup round trip (shared.api_keys.
    #: KeyCache; 0 disables it). A revocation still takes effect at once: each unit of work
    #: of a request authenticated from the cache checks the key first (migration 0027).
    api_key_cache_seconds: float = Field(default=1.0, ge=0, le=1.0)

    db_pool_min: int = 1
    db_pool_max: int = 10
    #: Unacknowledged messages the broker hands a costing consumer ahead of time.
    costing_prefetch: int = 200
    #: Most messages a costing consumer applies in one transaction.
    costing_batch_size: int = Field(default=100, ge=1)
    #: Attempts for a transient failure (deadlock, serialization, lost connection).
    costing_max_attempts: int = 8
    #: Redeliveries the broker allows before it dead-letters (a crashing consumer).
    costing_delivery_limit: int = 5
    #: Seconds a costing group retries an unreachable database before it goes back to the queue.
    costing_outage_retry_seconds: float = Field(default=300.0, gt=0)
    # --- QuickBooks Online (production defaults where Intuit fixes them) ---------------
    qbo_api_base: str = "https://quickbooks.api.intuit.com"
    qbo_oauth_authorize_url: str = "https://appcenter.intuit.com/connect/oauth2"
    qbo_oauth_token_url: str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL, not a secret
    qbo_oauth_revoke_url: str = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
    qbo_client_id: str | None = None
    qbo_client_secret: str | None = None
    qbo_webhook_verifier_token: str | None = None
    qbo_redirect_uri: str = "http://127.0.0.1:8081/oauth/quickbooks/callback"
    #: Days of history imported when a company connects (at most 30: CDC's reach).
    qbo_initial_import_days: int = Field(default=30, ge=0, le=30)
    #: Seconds between periodic CDC catch-ups of every connected company.
    qbo_cdc_interval_seconds: float = 300.0
    #: Intuit's per-realm limits, honoured by our client.
    qbo_rate_per_minute: int = 500
    qbo_max_concurrent: int = 10
    #: Pending notifications of one realm above which the worker reads by CDC instead of one GET each.
    qbo_coalesce_threshold: int = 20
    # --- Xero (production defaults where Xero fixes them; docs/xero.md) ------------------
    xero_api_base: str = "https://api.xero.com"
    xero_identity_base: str = "https://identity.xero.com"
    xero_oauth_authorize_url: str = "https://login.xero.com/identity/connect/authorize"
    #: Token and revocation endpoints; unset → ``<XERO_IDENTITY_BASE>/connect/token`` and ``/connect/revocation``.
    xero_oauth_token_url: str | None = None
    xero_oauth_revoke_url: str | None = None
    xero_client_id: str | None = None
    xero_client_secret: str | None = None
    #: The app's webhook key (developer.xero.com → Webhooks); unset → every webhook is refused (401).
    xero_webhook_key: str | None = None
    xero_redirect_uri: str = "http://127.0.0.1:8081/oauth/xero/callback"
    #: Space-separated OAuth scopes; apps created from 2 March 2026 need the granular ones (docs/xero.md §1).
    xero_scopes: str = "openid offline_access accounting.transactions.read accounting.settings.read"
    #: Days of history imported when an organisation connects.
    xero_initial_import_days: int = Field(default=30, ge=0, le=365)
    #: Seconds between periodic If-Modified-Since catch-ups (bank transactions arrive only so).
    xero_sync_interval_seconds: float = 300.0
    #: Xero's per-organisation limits (60 calls a minute, 5 in flight), honoured by our client.
    xero_rate_per_minute: int = 60
    xero_max_concurrent: int = 5
    #: A 429 whose Retry-After is longer than this fails the call (the catch-up retries later).
    xero_max_retry_after_seconds: float = 60.0
    #: Pending notifications of one organisation above which the worker catches up instead.
    xero_coalesce_threshold: int = 20
    #: 32-byte key, base64, that encrypts OAuth tokens at rest (AES-GCM). No default: the
    #: ingest service refuses to start without it (shared/secrets.py).
    token_encryption_key: str | None = None
    #: Earlier keys, comma-separated, still accepted for decryption while
    #: ``admin rotate-token-key`` re-encrypts every stored token under the current key.
    token_encryption_old_keys: str | None = None
    #: Signs the OAuth ``state`` parameter (at least 32 characters). No default: the ingest
    #: service refuses to start without it.
    oauth_state_secret: str | None = None

    #: Seconds a service may take to shut down after SIGTERM/SIGINT (stop taking work, finish
    #: or hand back what is in flight, close connections); beyond it, or on a second signal,
    #: it exits at once.
    shutdown_grace_seconds: float = Field(default=30.0, gt=0)
    #: Seconds between the costing service's readings of its queues on the broker (consumers,
    #: ready messages, dead-letter depth: its /metrics gauges).
    costing_broker_stats_seconds: float = Field(default=15.0, gt=0)

    @field_validator("database_url", "query_database_url")
    @classmethod
    def _service_password(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else with_password(value, info.data.get("database_password"))

    @field_validator("database_owner_url")
    @classmethod
    def _owner_password(cls, value: str, info: ValidationInfo) -> str:
        return with_password(value, info.data.get("database_owner_password"))

    @field_validator("amqp_url")
    @classmethod
    def _amqp_password(cls, value: str, info: ValidationInfo) -> str:
        return with_password(value, info.data.get("amqp_password"))

    #: Env-gated fault hooks for crash tests; never set in production.
    crash_point: str | None = None
