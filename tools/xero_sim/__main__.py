"""``python -m tools.xero_sim``: serve the simulator on XERO_SIM_HOST:XERO_SIM_PORT (127.0.0.1:8091)."""

from aiohttp import web

from shared.logging import configure, get_logger
from tools.xero_sim.app import create_app
from tools.xero_sim.config import SimConfig


def main() -> None:
    config = SimConfig()
    configure(config.log_format, config.log_level)
    get_logger("xero_sim").info(
        "xero simulator starting", host=config.host, port=config.port, demo=config.demo, webhook_url=config.webhook_url
    )
    web.run_app(create_app(config), host=config.host, port=config.port, access_log=None, print=None)


main()
