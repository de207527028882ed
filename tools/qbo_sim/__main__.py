"""``python -m tools.qbo_sim``: serve the simulator on QBO_SIM_HOST:QBO_SIM_PORT (127.0.0.1:8090)."""

from tools.qbo_sim.app import create_app
from tools.qbo_sim.config import SimConfig
from tools.sim_common.app import serve


def main() -> None:
    config = SimConfig()
    serve(
        config,
        create_app,
        "qbo_sim",
        "qbo simulator starting",
        demo=config.demo,
        webhook_url=config.webhook_url,
        webhook_format=config.webhook_format,
    )


main()
