"""Configuration of the QBO simulator (environment variables ``QBO_SIM_*``).

Tests build ``SimConfig(...)`` directly with small limits and a short retry schedule;
``python -m tools.qbo_sim`` reads the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SimConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QBO_SIM_", env_file=None, extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8090
    #: Where webhook notifications are POSTed (the app's endpoint registered "in the portal").
    webhook_url: str = "http://127.0.0.1:8081/webhooks/quickbooks"
    verifier_token: str = "sim-verifier-token"
    client_id: str = "sim-client"
    client_secret: str = "sim-secret"
    access_token_lifetime: int = 3600
    refresh_token_lifetime: int = 8_726_400  # 101 days, as Intuit reports it
    webhook_format: Literal["cloudevents", "legacy"] = "cloudevents"
    #: CloudEvents `type` word for a void: docs/quickbooks-api.md §1.3 lists both `void` and `voided` as unconfirmed.
    void_type: Literal["voided", "void"] = "voided"
    demo: bool = False

    #: Throttling per realm (QBO: 500 requests per minute, 10 concurrent).
    rate_per_minute: int = 500
    max_concurrent: int = 10
    #: Artificial latency of every QBO API request (makes concurrency observable).
    api_latency: float = 0.0

    #: Changes within this window go out in one delivery (≤ webhook_batch_max events).
    webhook_batch_window: float = 0.2
    webhook_batch_max: int = 100
    #: A delivery not answered with HTTP 200 within this many seconds is a failure.
    webhook_timeout: float = 3.0
    #: Compressed form of Intuit's 10 s, 20 s, 30 s, 5 min, … schedule; the last gap repeats.
    webhook_retry_schedule: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0, 8.0])
    webhook_max_attempts: int = 12

    #: Company-local UTC offset used in MetaData times (QBO renders company-local time).
    utc_offset: str = "-07:00"
    cdc_max_days: int = 30
    cdc_max_objects: int = 1000
    query_max_results: int = 1000

    #: Also read from the project-wide LOG_FORMAT / LOG_LEVEL.
    log_format: str = Field(
        default="json",
        pattern="^(json|console)$",
        validation_alias=AliasChoices("QBO_SIM_LOG_FORMAT", "LOG_FORMAT", "log_format"),
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("QBO_SIM_LOG_LEVEL", "LOG_LEVEL", "log_level"))
