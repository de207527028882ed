"""Driver for a running Xero simulator, so a person can watch the pipeline react.

    python -m tools.xero_sim.cli --sim http://127.0.0.1:8091 create-invoice --item W-100 --qty 3 --price 12.50
    python -m tools.xero_sim.cli void --id INV-0004          (also: delete, pay, authorise)
    python -m tools.xero_sim.cli list | items | token | stats | flush | itr [--url URL] | orgs

``--tenant`` defaults to the demo organisation; ``--quiet-webhook`` changes without a webhook.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.sim_common.client import call
from tools.xero_sim.demo import DEMO_TENANT_ID


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.xero_sim.cli")
    parser.add_argument("--sim", default="http://127.0.0.1:8091")
    parser.add_argument("--tenant", default=DEMO_TENANT_ID)
    parser.add_argument("--quiet-webhook", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-invoice")
    create.add_argument("--contact", default="Walk-in customer")
    create.add_argument("--item", required=True)
    create.add_argument("--qty", default="1")
    create.add_argument("--price", required=True)
    create.add_argument("--tax-rate", default="15")
    create.add_argument("--status", default="AUTHORISED")
    for move in ("void", "delete", "pay", "authorise"):
        sub.add_parser(move).add_argument("--id", required=True, help="InvoiceID or InvoiceNumber")
    itr = sub.add_parser("itr")
    itr.add_argument("--url")
    for name in ("list", "items", "token", "stats", "flush", "orgs"):
        sub.add_parser(name)
    args = parser.parse_args(argv)
    q = "?notify=false" if args.quiet_webhook else ""
    t = args.tenant
    result: Any
    if args.command == "create-invoice":
        line = {"item_code": args.item, "quantity": args.qty, "unit_amount": args.price, "tax_rate": args.tax_rate}
        result = call(
            args.sim, "POST", f"/sim/{t}/invoices{q}", {"contact": args.contact, "status": args.status, "lines": [line]}
        )
    elif args.command in ("void", "delete", "pay", "authorise"):
        result = call(args.sim, "POST", f"/sim/{t}/invoices/{args.id}/{args.command}{q}")
    elif args.command == "list":
        result = call(args.sim, "GET", f"/sim/{t}/invoices")
    elif args.command == "items":
        result = call(args.sim, "GET", f"/sim/{t}/items")
    elif args.command == "token":
        result = call(args.sim, "POST", f"/sim/{t}/tokens")
    elif args.command == "stats":
        result = call(args.sim, "GET", f"/sim/{t}/stats")
    elif args.command == "flush":
        result = call(args.sim, "POST", "/sim/webhooks/flush")
    elif args.command == "itr":
        result = call(args.sim, "POST", "/sim/webhooks/intent-to-receive", {"url": args.url} if args.url else {})
    else:
        result = call(args.sim, "GET", "/sim/orgs")
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
