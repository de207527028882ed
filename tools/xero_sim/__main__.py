"""``python -m tools.xero_sim``: serve the simulator on XERO_SIM_HOST:XERO_SIM_PORT (127.0.0.1:8091)."""

from tools.sim_common.app import serve
from tools.xero_sim.app import create_app
from tools.xero_sim.config import SimConfig


def main() -> None:
    config = SimConfig()
    serve(config, create_app, "xero_sim", "xero simulator starting", demo=config.demo, webhook_url=config.webhook_url)


main()
