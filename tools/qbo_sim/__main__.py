"""``python -m tools.qbo_sim``: serve the simulator on QBO_SIM_HOST:QBO_SIM_PORT (127.0.0.1:8090)."""

from aiohttp import web

from shared.logging import configure, get_logger
from tools.qbo_sim.app import create_app
from tools.qbo_sim.config import SimConfig


def main() -> None:
    config = SimConfig()
    configure(config.log_format, config.log_level)
    get_logger("qbo_sim").info(
        "qbo simulator starting",
        host=config.host,
        port=config.port,
        demo=config.demo,
        webhook_url=config.webhook_url,
        webhook_format=config.webhook_format,
    )
    web.run_app(create_app(config), host=config.host, port=config.port, access_log=None, print=None)


main()
