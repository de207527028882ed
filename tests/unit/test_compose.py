"""docker-compose.yml checked against the code (issue 20): every setting a service needs is
set, every health check asks a path the service serves, every published port is one its
process binds on all interfaces, the database and the broker are not published and have
passwords, every secret comes from what scripts/secrets.sh generates, containers run as a
non-root user and images are pinned by digest. Where a Docker engine with Compose answers,
``docker compose config`` must accept the file too."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web

from shared.secrets import state_secret, token_keys
from shared.settings import Settings, url_list
from tools.qbo_sim.config import SimConfig

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEV_COMPOSE = ROOT / "deploy" / "compose.dev-infra.yml"
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
APP_MODULES = {"services.ingest", "services.query", "services.costing", "tools.qbo_sim"}
PORT_SETTING = {"services.ingest": "ingest_port", "services.query": "query_port", "services.costing": "costing_port"}


@pytest.fixture(scope="module")
def secrets_env(tmp_path_factory) -> dict[str, str]:
    """What `make secrets` writes, from the script itself."""
    path = tmp_path_factory.mktemp("secrets") / "secrets.env"
    subprocess.run(["bash", str(ROOT / "scripts" / "secrets.sh"), str(path)], check=True, capture_output=True)
    assert path.stat().st_mode & 0o077 == 0  # mode 0600
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#")
    return {name: value for name, value in pairs}


def interpolate(text: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in env and (env[name] or op != ":-"):
            return env[name]
        if op in (":-", "-"):
            return arg
        raise AssertionError(f"${{{name}}} is neither in var/secrets.env nor given a default")

    return VARIABLE.sub(value, text)


@pytest.fixture(scope="module")
def compose(secrets_env) -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), secrets_env))


def module_of(service: dict) -> str | None:
    command = service.get("command") or []
    return command[2] if command[:2] == ["python", "-m"] else None


def app_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if module_of(s) in APP_MODULES}


def settings_of(service: dict, monkeypatch) -> Settings:
    """The service's Settings as the container builds them: from its environment alone."""
    for name in [*Settings.model_fields, "POSTGRES_PASSWORD", "DATABASE_OWNER_PASSWORD"]:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in (service.get("environment") or {}).items():
        monkeypatch.setenv(name, str(value))
    return Settings()


def test_every_variable_is_a_generated_secret_or_has_a_default(secrets_env):
    for match in VARIABLE.finditer(COMPOSE.read_text()):
        assert match["name"] in secrets_env or match["op"] == ":-", match[0]
    # A secret is required (`:?`), never defaulted.
    for match in VARIABLE.finditer(COMPOSE.read_text()):
        if match["name"] in secrets_env and match["op"]:
            assert match["op"] == ":?", f"{match[0]}: a secret has no default"


def test_no_secret_is_written_in_the_file(secrets_env):
    text = COMPOSE.read_text()
    assert "POSTGRES_HOST_AUTH_METHOD" not in text and "guest" not in text
    for value in secrets_env.values():
        assert value not in text


def test_the_database_and_the_broker_are_not_published_and_have_passwords(compose):
    services = compose["services"]
    for name in ("postgres", "postgres-replica", "rabbitmq", "rabbitmq-2", "rabbitmq-3"):
        assert "ports" not in services[name], name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert "scram-sha-256" in services["postgres"]["environment"]["POSTGRES_INITDB_ARGS"]
    assert services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"]
    assert services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"] != "guest"


def test_only_the_http_ports_a_user_needs_are_published(compose):
    published = {
        name: [str(p).rsplit(":", 2)[-2] for p in s.get("ports", [])] for name, s in compose["services"].items()
    }
    assert {n: p for n, p in published.items() if p} == {
        "ingest": ["8081"],
        "query": ["8082"],
        "qbo-sim": ["8090"],
        "query-replica": ["8084"],
    }
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port  # PUBLISH_ADDR's default


@pytest.mark.parametrize("path", [COMPOSE, DEV_COMPOSE])
def test_images_are_pinned_by_digest_and_containers_run_as_a_non_root_user(path, secrets_env):
    compose = yaml.safe_load(interpolate(path.read_text(), secrets_env))
    for name, service in compose["services"].items():
        if "image" in service and "build" not in service:
            assert re.search(r"@sha256:[0-9a-f]{64}$", service["image"]), name
        if "build" in service:
            assert re.search(r"@sha256:[0-9a-f]{64}$", service["build"]["args"]["PYTHON_IMAGE"]), name
        assert service.get("user") not in (None, "root", "0", "0:0"), f"{name} runs as root"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=\S+@sha256:[0-9a-f]{64}", dockerfile)
    assert re.search(r"^USER (?!root|0\b)", dockerfile, re.M)


def test_the_development_fallback_listens_on_loopback_only():
    compose = yaml.safe_load(interpolate(DEV_COMPOSE.read_text(), {}))
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_every_service_gets_the_settings_it_requires(compose, monkeypatch):
    services = compose["services"]
    names = set(services)
    for name, service in app_services(compose).items():
        module = module_of(service)
        if module == "tools.qbo_sim":
            continue
        settings = settings_of(service, monkeypatch)
        database = urlsplit(settings.database_url)
        assert (database.hostname, database.username) == ("postgres", "partsemble_app"), name
        assert database.password, f"{name}: DATABASE_URL without a password"
        for url in url_list(settings.amqp_url):
            broker = urlsplit(url)
            assert broker.hostname in names and broker.password and broker.username == "partsemble", (name, url)
        if settings.query_database_url:
            assert urlsplit(settings.query_database_url).password
            assert urlsplit(settings.query_database_url).hostname in names
        if module == "services.ingest":
            token_keys(settings.token_encryption_key, settings.token_encryption_old_keys)  # refuses if missing
            state_secret(settings.oauth_state_secret)
            assert settings.qbo_client_id and settings.qbo_client_secret and settings.qbo_webhook_verifier_token
            for url in (settings.qbo_api_base, settings.qbo_oauth_token_url, settings.qbo_oauth_revoke_url):
                assert urlsplit(url).hostname == "qbo-sim", url  # called from the container
            sim = services["qbo-sim"]["environment"]
            assert settings.qbo_webhook_verifier_token == sim["QBO_SIM_VERIFIER_TOKEN"]  # signatures check out
    for job in ("migrate", "demo"):
        settings = settings_of(services[job], monkeypatch)
        owner = urlsplit(settings.database_owner_url)
        assert owner.hostname == "postgres" and owner.password, job
        assert urlsplit(settings.database_url).password, job


def test_the_simulator_posts_webhooks_to_ingest_and_the_demo_reaches_both(compose, monkeypatch):
    services = compose["services"]
    env = services["qbo-sim"]["environment"]
    for name in list(env):
        monkeypatch.setenv(name, str(env[name]))
    config = SimConfig()
    webhook = urlsplit(config.webhook_url)
    assert (webhook.hostname, webhook.port, webhook.path) == ("ingest", 8081, "/webhooks/quickbooks")
    command = services["demo"]["command"]
    assert command[command.index("--sim") + 1] == "http://qbo-sim:8090"
    assert command[command.index("--ingest") + 1] == "http://ingest:8081"


def _app(module: str, settings: Settings) -> web.Application:
    if module == "services.ingest":
        from services.ingest.app import create_app as ingest

        return ingest(settings)
    if module == "services.query":
        from services.query.app import create_app as query

        return query(settings)
    if module == "services.costing":
        from services.costing.main import create_app as costing

        return costing(settings)
    from tools.qbo_sim.app import create_app as sim

    return sim(SimConfig())


def _get_paths(app: web.Application) -> set[str]:
    return {r.resource.canonical for r in app.router.routes() if r.method in ("GET", "*") and r.resource is not None}


def test_health_checks_ask_paths_the_services_serve_on_the_ports_they_bind(compose, monkeypatch):
    for name, service in app_services(compose).items():
        module = module_of(service)
        assert module is not None
        settings = settings_of(service, monkeypatch)
        if module == "tools.qbo_sim":
            config = SimConfig()
            host, port = config.host, config.port
        else:
            host, port = settings.bind_host, getattr(settings, PORT_SETTING[module])
        check = " ".join(service["healthcheck"]["test"])
        url = urlsplit(re.search(r"http://[^'\" ]+", check)[0])
        assert url.port == port, f"{name}: health check on {url.port}, the service binds {port}"
        assert url.path in _get_paths(_app(module, settings)), f"{name}: {url.path} is not served"
        for published in service.get("ports", []):
            assert int(str(published).rsplit(":", 1)[-1]) == port, f"{name}: publishes a port it does not bind"
            assert host == "0.0.0.0", f"{name} listens on {host}: its published port would not answer"  # noqa: S104


def test_the_application_waits_for_the_cluster_nodes_when_they_run(compose):
    for service in app_services(compose).values():
        depends = service.get("depends_on") or {}
        if "rabbitmq" in depends:
            for node in ("rabbitmq-2", "rabbitmq-3"):
                assert depends[node] == {"condition": "service_healthy", "required": False}


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.docker
def test_docker_compose_accepts_the_file(tmp_path, secrets_env):
    assert _compose_command() is not None, "--with-docker needs docker compose (the plugin or docker-compose)"
    env_file = tmp_path / "secrets.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in secrets_env.items()))
    command = [*(_compose_command() or []), "--env-file", str(env_file), "--profile", "cluster", "config", "--quiet"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, shlex.join(command) + "\n" + result.stderr
