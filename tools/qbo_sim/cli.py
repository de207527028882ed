"""Driver for a running simulator, so a person can watch the pipeline react.

    python -m tools.qbo_sim.cli --sim http://127.0.0.1:8090 create-invoice --realm R \\
        --customer Bob --item W-100 --qty 3 --price 12.50
    python -m tools.qbo_sim.cli void --realm R --entity invoice --id 5
    python -m tools.qbo_sim.cli delete --realm R --entity invoice --id 5
    python -m tools.qbo_sim.cli edit-qty --realm R --entity invoice --id 5 --line 1 --qty 4
    python -m tools.qbo_sim.cli list --realm R
    python -m tools.qbo_sim.cli items --realm R | token --realm R | stats --realm R | flush
    python -m tools.qbo_sim.cli create-company [--demo] | webhooks --hold false --format legacy

``--realm`` defaults to the demo realm; ``--quiet-webhook`` (``?notify=false``) changes without a webhook.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tools.qbo_sim.demo import DEMO_REALM_ID
from tools.sim_common import client


class Sim:
    def __init__(self, base: str):
        client.require_http(base)
        self.base = base.rstrip("/")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = client.call(self.base, method, path, body)
        return result

    def item_id(self, realm: str, key: str) -> str:
        """An item id from an id, a Sku or a name."""
        items = self.call("GET", f"/sim/{realm}/items")["Item"]
        for item in items:
            if key in (item["Id"], item.get("Sku"), item["Name"]):
                return str(item["Id"])
        raise SystemExit(
            f"no item {key!r} in realm {realm} (known Skus: {', '.join(i['Sku'] for i in items if i.get('Sku'))})"
        )


def _q(args: argparse.Namespace) -> str:
    return "?notify=false" if getattr(args, "quiet_webhook", False) else ""


def _summary(entity: str, body: dict[str, Any]) -> str:
    lines = []
    for line in body.get("Line", []):
        detail = line.get("SalesItemLineDetail")
        if detail:
            lines.append(f"{detail['ItemRef'].get('name', detail['ItemRef']['value'])} x{detail.get('Qty', '-')}")
        elif line.get("GroupLineDetail"):
            group = line["GroupLineDetail"]
            lines.append(f"[{group['GroupItemRef']['name']} x{group.get('Quantity', '-')}]")
    return (
        f"{entity:<12} id={body['Id']:<5} doc={body.get('DocNumber', ''):<6} {body.get('TxnDate', '')} "
        f"sync={body['SyncToken']:<3} {body.get('CustomerRef', {}).get('name', ''):<22} "
        f"total={body.get('TotalAmt')} {body.get('CurrencyRef', {}).get('value', '')} "
        f"{'VOIDED ' if str(body.get('PrivateNote', '')).startswith('Voided') else ''}{', '.join(lines)}"
    )


def run(args: argparse.Namespace) -> object:
    sim = Sim(args.sim)
    cmd = args.command
    if cmd == "create-company":
        return sim.call(
            "POST",
            "/sim/companies",
            {
                "demo": args.demo,
                "home_currency": args.currency,
                **({"realm_id": args.realm_id} if args.realm_id else {}),
            },
        )
    if cmd == "flush":
        return sim.call("POST", "/sim/webhooks/flush")
    if cmd == "webhooks":
        options = {key: json.loads(value) for key, value in (args.option or [])}
        return sim.call("POST", "/sim/webhooks/config", options)
    realm = args.realm
    if cmd in ("create-invoice", "create-salesreceipt", "create-creditmemo"):
        entity = cmd.split("-", 1)[1]
        line = {"item_id": sim.item_id(realm, args.item), "qty": args.qty}
        if args.price is not None:
            line["unit_price"] = args.price
        body = {"customer": args.customer, "lines": [line]}
        if args.date:
            body["txn_date"] = args.date
        if args.currency:
            body.update(currency=args.currency, exchange_rate=args.rate)
        return sim.call("POST", f"/sim/{realm}/{entity}{_q(args)}", body)
    if cmd == "void":
        return sim.call("POST", f"/sim/{realm}/{args.entity}/{args.id}/void{_q(args)}")
    if cmd == "delete":
        return sim.call("DELETE", f"/sim/{realm}/{args.entity}/{args.id}{_q(args)}")
    if cmd == "edit-qty":
        spec = sim.call("GET", f"/sim/{realm}/{args.entity}/{args.id}")["spec"]
        lines = spec.get("lines", [])
        if not 1 <= args.line <= len(lines):
            raise SystemExit(f"--line must be 1..{len(lines)}")
        lines[args.line - 1]["qty"] = args.qty
        return sim.call("POST", f"/sim/{realm}/{args.entity}/{args.id}{_q(args)}", {"lines": lines})
    if cmd == "list":
        for entity in ("invoice", "salesreceipt", "creditmemo"):
            for key, rows in sim.call("GET", f"/sim/{realm}/{entity}").items():
                for row in rows:
                    print(_summary(key, row))
        return None
    if cmd == "items":
        for item in sim.call("GET", f"/sim/{realm}/items")["Item"]:
            print(
                f"id={item['Id']:<4} {item['Type']:<13} sku={item.get('Sku', ''):<8} {item['Name']:<20} "
                f"price={item.get('UnitPrice', '')} {'active' if item['Active'] else 'inactive'}"
            )
        return None
    if cmd == "token":
        return sim.call("POST", f"/sim/{realm}/tokens")
    if cmd == "stats":
        return sim.call("GET", f"/sim/{realm}/stats")
    raise SystemExit(f"unknown command {cmd}")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m tools.qbo_sim.cli", description=__doc__.split("\n\n")[0])
    root.add_argument("--sim", default="http://127.0.0.1:8090", help="simulator base URL")
    sub = root.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, realm: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        if realm:
            p.add_argument("--realm", default=DEMO_REALM_ID)
        p.add_argument("--quiet-webhook", action="store_true", help="change without sending a webhook")
        return p

    for entity in ("invoice", "salesreceipt", "creditmemo"):
        p = command(f"create-{entity}", f"create a one-line {entity}")
        p.add_argument("--customer", default="Walk-in Customer")
        p.add_argument("--item", required=True, help="Sku, name or id")
        p.add_argument("--qty", default="1")
        p.add_argument("--price", default=None)
        p.add_argument("--date", default=None, help="TxnDate YYYY-MM-DD")
        p.add_argument("--currency", default=None)
        p.add_argument("--rate", default=None, help="exchange rate (foreign currency)")
    for name in ("void", "delete"):
        p = command(name, f"{name} a sale")
        p.add_argument("--entity", default="invoice", choices=("invoice", "salesreceipt", "creditmemo"))
        p.add_argument("--id", required=True)
    p = command("edit-qty", "change the quantity of one line (1-based, as created)")
    p.add_argument("--entity", default="invoice", choices=("invoice", "salesreceipt", "creditmemo"))
    p.add_argument("--id", required=True)
    p.add_argument("--line", type=int, required=True)
    p.add_argument("--qty", required=True)
    command("list", "list the sales of a realm")
    command("items", "list the items of a realm")
    command("token", "mint an access/refresh token pair (connect-quickbooks)")
    command("stats", "request/throttle/refresh/webhook counters")
    p = command("create-company", "create a company", realm=False)
    p.add_argument("--demo", action="store_true")
    p.add_argument("--currency", default="USD")
    p.add_argument("--realm-id", default=None)
    command("flush", "deliver pending webhooks now", realm=False)
    p = command("webhooks", "set webhook fault options, e.g. --option hold true", realm=False)
    p.add_argument("--option", nargs=2, action="append", metavar=("NAME", "JSON_VALUE"))
    return root


def main(argv: list[str] | None = None) -> int:
    result = run(parser().parse_args(argv))
    if result is not None:
        json.dump(result, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
