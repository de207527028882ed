"""In-memory organisations: items, contacts and documents (invoices, credit notes, bank transactions). Every
mutation bumps ``UpdatedDateUTC`` and returns the ``Change`` the webhook sender turns into an event.

Status rules (docs/xero.md §3.3): documents are created DRAFT, SUBMITTED, AUTHORISED or PAID (bank transactions
AUTHORISED); DRAFT/SUBMITTED may be deleted, AUTHORISED voided (PAID must first lose its payment); VOIDED and
DELETED are final and read-only. Edits keep the document id but give every line a new ``LineItemID`` (Xero
recreates lines an update does not name).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from tools.sim_common.errors import SimError
from tools.xero_sim import timefmt
from tools.xero_sim.entities import DEFAULT_TYPE, NUMBER_FIELD, TYPES, Document, Item, compute_line
from tools.xero_sim.specs import DocPatch, DocSpec, ItemSpec, OrgSpec

#: Only these categories have webhooks (docs/xero.md §2.1): no BANKTRANSACTION, no ITEM.
EVENT_CATEGORY = {"Invoice": "INVOICE", "CreditNote": "CREDITNOTE"}
PREFIX = {"ACCREC": "INV-", "ACCPAY": "BILL-", "ACCRECCREDIT": "CN-", "ACCPAYCREDIT": "SCN-"}


@dataclass
class Change:
    tenant: str
    kind: str
    doc_id: str
    event_type: str  # CREATE | UPDATE
    time: datetime
    data: dict[str, str] | None = None


@dataclass
class Org:
    tenant_id: str
    name: str
    base_currency: str
    country_code: str
    created: datetime
    short_code: str = "!sim01"
    items: dict[str, Item] = field(default_factory=dict)  # ItemID -> Item
    contacts: dict[str, str] = field(default_factory=dict)  # name (case-folded) -> ContactID
    documents: dict[str, dict[str, Document]] = field(
        default_factory=lambda: {"Invoice": {}, "CreditNote": {}, "BankTransaction": {}}
    )
    _numbers: dict[str, int] = field(default_factory=dict)
    _last_time: datetime | None = None

    # --- plumbing -------------------------------------------------------------------------
    def tick(self) -> datetime:
        moment = timefmt.now()
        if self._last_time is not None and moment <= self._last_time:
            moment = self._last_time + timedelta(milliseconds=1)
        self._last_time = moment
        return moment

    def contact_id(self, name: str) -> str:
        return self.contacts.setdefault(name.casefold(), str(uuid.uuid4()))

    def items_by_code(self) -> dict[str, Item]:
        return {item.spec.code: item for item in self.items.values()}

    def document(self, kind: str, key: str) -> Document | None:
        """By id, or (invoices, credit notes) by number."""
        docs = self.documents[kind]
        if key in docs:
            return docs[key]
        key_folded = key.casefold()
        return next((d for d in docs.values() if d.number and d.number.casefold() == key_folded), None)

    def _change(self, doc: Document, event_type: str) -> list[Change]:
        category = EVENT_CATEGORY.get(doc.kind)
        if category is None:
            return []
        data = {"Type": doc.type, "Status": doc.status} if doc.kind == "CreditNote" else None
        return [Change(self.tenant_id, doc.kind, doc.doc_id, event_type, doc.updated, data)]

    # --- items ----------------------------------------------------------------------------
    def create_item(self, spec: ItemSpec) -> Item:
        if any(item.spec.code.casefold() == spec.code.casefold() for item in self.items.values()):
            raise SimError(409, f"an item with code {spec.code!r} exists")
        item = Item(str(uuid.uuid4()), spec, self.tick())
        self.items[item.item_id] = item
        return item

    # --- documents ------------------------------------------------------------------------
    def _validate(self, kind: str, spec: DocSpec) -> tuple[str, str, Decimal]:
        doc_type = spec.type or DEFAULT_TYPE[kind]
        if doc_type not in TYPES[kind]:
            raise SimError(400, f"{kind} Type must be one of {', '.join(TYPES[kind])}")
        discounted = any(line.discount_rate is not None or line.discount_amount is not None for line in spec.lines)
        if discounted and (kind != "Invoice" or doc_type != "ACCREC"):
            raise SimError(400, "discounts are supported only on ACCREC invoices")
        currency = (spec.currency_code or self.base_currency).upper()
        if currency == self.base_currency:
            rate = Decimal(1)
        elif spec.currency_rate is None or spec.currency_rate <= 0:
            raise SimError(400, "a foreign-currency document needs a positive currency_rate (no XE.com here)")
        else:
            rate = spec.currency_rate
        codes = self.items_by_code()
        for line in spec.lines:
            if line.item_code is not None and line.item_code not in codes:
                raise SimError(400, f"Item code '{line.item_code}' is not valid")
        return doc_type, currency, rate

    def create(self, kind: str, spec: DocSpec) -> tuple[Document, list[Change]]:
        doc_type, currency, rate = self._validate(kind, spec)
        status = spec.status or ("AUTHORISED" if kind == "BankTransaction" else "DRAFT")
        if status in ("VOIDED", "DELETED"):
            raise SimError(400, f"a document cannot be created {status}")
        if kind == "BankTransaction" and status != "AUTHORISED":
            raise SimError(400, "bank transactions are created AUTHORISED")
        number = None
        if kind in NUMBER_FIELD:
            counter = self._numbers.get(doc_type, 1)
            number = spec.number or f"{PREFIX[doc_type]}{counter:04d}"
            self._numbers[doc_type] = counter + 1
        moment = self.tick()
        doc = Document(
            kind=kind,
            doc_id=str(uuid.uuid4()),
            spec=spec,
            type=doc_type,
            status=status,
            number=number,
            contact_id=self.contact_id(spec.contact),
            currency_code=currency,
            currency_rate=rate,
            created=moment,
            updated=moment,
            lines=[compute_line(line, spec.line_amount_types) for line in spec.lines],
            items=self.items_by_code(),
        )
        self.documents[kind][doc.doc_id] = doc
        return doc, self._change(doc, "CREATE")

    def _live(self, kind: str, doc_id: str) -> Document:
        doc = self.document(kind, doc_id)
        if doc is None:
            raise SimError(404, f"no {kind} {doc_id}")
        if doc.status in ("VOIDED", "DELETED"):
            raise SimError(400, f"{kind} {doc.doc_id} is {doc.status} and cannot be changed")
        return doc

    def edit(self, kind: str, doc_id: str, patch: DocPatch) -> tuple[Document, list[Change]]:
        doc = self._live(kind, doc_id)
        changes = patch.model_dump(exclude_unset=True)
        new_status = changes.pop("status", None)
        if doc.status == "PAID" and ("lines" in changes or "currency_rate" in changes):
            raise SimError(400, "a PAID document cannot change its total; remove the payment first")
        merged = DocSpec.model_validate({**doc.spec.model_dump(), **changes, "type": doc.type, "status": doc.status})
        _, currency, rate = self._validate(kind, merged)
        if new_status is not None and new_status != doc.status:
            self._check_move(doc, new_status)
            doc.status = new_status
        doc.spec = merged
        doc.currency_code, doc.currency_rate = currency, rate
        doc.items = self.items_by_code()
        doc.lines = [compute_line(line, merged.line_amount_types) for line in merged.lines]
        doc.updated = self.tick()
        return doc, self._change(doc, "UPDATE")

    def _check_move(self, doc: Document, status: str) -> None:
        allowed = {
            "DRAFT": {"SUBMITTED", "AUTHORISED", "DELETED"},
            "SUBMITTED": {"DRAFT", "AUTHORISED", "DELETED"},
            "AUTHORISED": {"PAID", "VOIDED"},
            "PAID": {"AUTHORISED"},
        }
        if doc.kind == "BankTransaction":
            allowed = {"AUTHORISED": {"DELETED"}}
        if status not in allowed.get(doc.status, set()):
            raise SimError(400, f"{doc.kind} cannot move from {doc.status} to {status}")

    def move(self, kind: str, doc_id: str, status: str) -> tuple[Document, list[Change]]:
        doc = self._live(kind, doc_id)
        self._check_move(doc, status)
        doc.status = status
        doc.updated = self.tick()
        return doc, self._change(doc, "UPDATE")


class Store:
    def __init__(self) -> None:
        self.orgs: dict[str, Org] = {}

    def create_org(self, spec: OrgSpec) -> Org:
        tenant_id = spec.tenant_id or str(uuid.uuid4())
        if tenant_id in self.orgs:
            raise SimError(409, f"organisation {tenant_id} exists")
        org = Org(tenant_id, spec.name, spec.base_currency.upper(), spec.country_code.upper(), timefmt.now())
        org.short_code = "!" + tenant_id.replace("-", "")[:5]
        self.orgs[tenant_id] = org
        return org

    def org(self, tenant_id: str) -> Org:
        org = self.orgs.get(tenant_id)
        if org is None:
            raise SimError(404, f"no organisation {tenant_id}")
        return org
