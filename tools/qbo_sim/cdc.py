"""Change data capture (docs/quickbooks-api.md §3).

``changedSince`` is inclusive and compared at full internal precision. More than
``cdc_max_objects`` changes: the oldest ones (by LastUpdatedTime, across all requested entities)
fill the response, so a client that shrinks its window from the newest returned time makes
progress. The >30-day rejection uses QBO's observed wording ("… older than fixed days is not
supported"); its code is not documented, so ``500`` (Unsupported Operation) is used [U].
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tools.qbo_sim import timefmt
from tools.qbo_sim.store import Company

CDC_ENTITIES = {
    "invoice": "Invoice",
    "salesreceipt": "SalesReceipt",
    "creditmemo": "CreditMemo",
    "item": "Item",
    "customer": "Customer",
}


class CdcError(Exception):
    def __init__(self, code: str, message: str, detail: str):
        super().__init__(detail)
        self.code, self.message, self.detail = code, message, detail


def parse_request(
    entities: str | None, changed_since: str | None, company: Company, max_days: int
) -> tuple[list[str], datetime]:
    if not entities:
        raise CdcError(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "Required parameter entities is missing in the request",
        )
    if not changed_since:
        raise CdcError(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "Required parameter changedSince is missing in the request",
        )
    names = []
    for raw in entities.split(","):
        name = CDC_ENTITIES.get(raw.strip().lower())
        if name is None:
            raise CdcError("2170", "Invalid enumeration", f"Entity {raw.strip()} is not supported for cdc")
        if name not in names:
            names.append(name)
    try:
        since = timefmt.parse_datetime(changed_since, company.tz)
    except ValueError as exc:
        raise CdcError(
            "2010", "Request has invalid or unsupported property", f"Invalid changedSince {changed_since!r}"
        ) from exc
    if since < timefmt.now() - timedelta(days=max_days):
        raise CdcError(
            "500",
            "Unsupported Operation",
            f"Operation cdc with changedSince date {changed_since} which is older than fixed days is not supported.",
        )
    return names, since


def changes(company: Company, names: list[str], since: datetime, max_objects: int) -> list[dict[str, Any]]:
    found = [record for name in names for record in company.records[name].values() if record.updated_time >= since]
    found.sort(key=lambda record: record.updated_time)
    found = found[:max_objects]
    by_entity: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for record in found:
        by_entity[record.entity].append(record.stub(company.tz) if record.deleted else record.render(company.tz))
    responses = []
    for name in names:
        rows = by_entity[name]
        responses.append(
            {name: rows, "startPosition": 1, "maxResults": len(rows), "totalCount": len(rows)} if rows else {}
        )
    return [{"QueryResponse": responses}]
