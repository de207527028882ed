"""Settings from environment variables (pydantic-settings). One object per process,
created in each service's composition root and passed down; never a module global."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/partsemble"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    #: Names of the broker objects; tests set their own prefix.
    broker_prefix: str = "partsemble"

    ingest_port: int = 8081
    query_port: int = 8082
    costing_port: int = 8083
    bind_host: str = "127.0.0.1"

    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_level: str = "INFO"

    #: Largest request body the HTTP services accept (bytes).
    max_body_bytes: int = 1_048_576

    db_pool_min: int = 1
    db_pool_max: int = 10
    #: Messages a costing consumer handles at once.
    costing_prefetch: int = 8
    #: Attempts for a transient failure (deadlock, serialization, lost connection).
    costing_max_attempts: int = 8
    #: Redeliveries the broker allows before it dead-letters (a crashing consumer).
    costing_delivery_limit: int = 5
    #: Env-gated fault hooks for crash tests; never set in production.
    crash_point: str | None = None
