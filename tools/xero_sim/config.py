"""Configuration of the Xero simulator (environment variables ``XERO_SIM_*``).

Tests build ``SimConfig(...)`` directly with small limits and a short retry schedule;
``python -m tools.xero_sim`` reads the environment.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SimConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XERO_SIM_", env_file=None, extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8091
    #: Where webhook deliveries are POSTed (the app's delivery URL "in the developer portal").
    webhook_url: str = "http://127.0.0.1:8081/webhooks/xero"
    #: The webhook key Xero shows in the portal; signs ``x-xero-signature``.
    webhook_key: str = "sim-xero-webhook-key"
    #: Deliver events only after a successful intent-to-receive handshake (Xero's rule). Off by default so tests
    #: and ``make run`` need not run the handshake first.
    require_itr: bool = False
    client_id: str = "SIMXEROCLIENTID0000000000000000"
    client_secret: str = "sim-xero-secret"
    #: Allowed redirect URIs; empty = any (a real app registers up to 50, exact match).
    redirect_uris: list[str] = Field(default_factory=list)
    access_token_lifetime: int = 1800  # 30 minutes
    refresh_token_lifetime: int = 60 * 86400  # 60 days unused
    #: How long a rotated-away refresh token still works (Xero: 30 minutes).
    refresh_grace: int = 1800
    demo: bool = False

    #: Per tenant: 60 calls per minute, 5,000 per day, 5 in flight; per app: 10,000 per minute.
    rate_per_minute: int = 60
    rate_per_day: int = 5000
    max_concurrent: int = 5
    app_rate_per_minute: int = 10_000
    #: Length of the "minute" and "day" windows in seconds (tests shrink them).
    minute_window: float = 60.0
    day_window: float = 86_400.0
    #: Artificial latency of every Accounting API request (makes the concurrent limit observable).
    api_latency: float = 0.0
    page_size: int = 100
    max_page_size: int = 1000
    #: Unfiltered lists include DELETED documents (undocumented in Xero; docs/xero.md §3.5).
    list_deleted: bool = True

    #: Changes within this window go out in one delivery (≤ webhook_batch_max events).
    webhook_batch_window: float = 0.2
    webhook_batch_max: int = 50
    #: A delivery not answered 200 within this many seconds is a failure (Xero: 5 s).
    webhook_timeout: float = 5.0
    #: Compressed form of "decreasing frequency for up to 24 hours"; the last gap repeats.
    webhook_retry_schedule: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0, 8.0])
    webhook_max_attempts: int = 10

    log_format: str = Field(
        default="json",
        pattern="^(json|console)$",
        validation_alias=AliasChoices("XERO_SIM_LOG_FORMAT", "LOG_FORMAT", "log_format"),
    )
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("XERO_SIM_LOG_LEVEL", "LOG_LEVEL", "log_level")
    )
