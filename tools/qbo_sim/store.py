"""In-memory company state: a dict of companies by realm id, each with items, customers
and sales forms. Every mutation bumps ``SyncToken`` and ``MetaData.LastUpdatedTime`` and
returns the ``Change`` records the webhook sender turns into notifications."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from tools.qbo_sim import timefmt
from tools.qbo_sim.entities import (
    SALES_ENTITIES,
    Context,
    CustomerState,
    ItemState,
    SpecError,
    build_transaction,
    customer_body,
    item_body,
    void_body,
)
from tools.qbo_sim.specs import CustomerSpec, ItemPatch, ItemSpec, LineSpec, TxnSpec
from tools.sim_common import errors


class SimError(errors.SimError):
    """A request the simulator refuses (HTTP ``status``; ``code``: the QBO Fault code the API answers)."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(status, message)
        self.code = code or {404: "610", 409: "6240"}.get(status, "6000")


@dataclass
class Change:
    realm: str
    entity: str
    id: str
    operation: str  # Create | Update | Delete | Void | Merge | Emailed
    time: datetime
    deleted_id: str | None = None


@dataclass
class Record:
    entity: str
    id: str
    create_time: datetime
    updated_time: datetime
    body: dict[str, Any]
    spec: TxnSpec | ItemState | CustomerState
    sync_token: int = 0
    deleted: bool = False
    voided: bool = False

    @property
    def txn_spec(self) -> TxnSpec:
        """The spec of a sales form (every sales record keeps a ``TxnSpec``)."""
        if not isinstance(self.spec, TxnSpec):
            raise TypeError(f"{self.entity} {self.id} is not a sales form")
        return self.spec

    def render(self, tz: timezone) -> dict[str, Any]:
        return {
            "domain": "QBO",
            "sparse": False,
            "Id": self.id,
            "SyncToken": str(self.sync_token),
            "MetaData": {
                "CreateTime": timefmt.entity_time(self.create_time, tz),
                "LastUpdatedTime": timefmt.entity_time(self.updated_time, tz),
            },
            **self.body,
        }

    def stub(self, tz: timezone) -> dict[str, Any]:
        return {
            "domain": "QBO",
            "status": "Deleted",
            "Id": self.id,
            "MetaData": {"LastUpdatedTime": timefmt.entity_time(self.updated_time, tz)},
        }


@dataclass
class Company:
    realm_id: str
    home_currency: str
    tz: timezone
    multicurrency: bool = False
    records: dict[str, dict[str, Record]] = field(
        default_factory=lambda: {name: {} for name in (*SALES_ENTITIES, "Item", "Customer")}
    )
    #: DisplayName (case-folded) -> Customer id.
    customers: dict[str, str] = field(default_factory=dict)
    _next_customer_id: int = 1
    _next_txn_id: int = 1
    _next_item_id: int = 1
    _doc_numbers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SALES_ENTITIES, 1001))
    _last_time: datetime | None = None

    # --- plumbing -------------------------------------------------------------------------
    def tick(self) -> datetime:
        """Now, strictly after the previous change of this company (changes are totally ordered)."""
        moment = timefmt.now()
        if self._last_time is not None and moment <= self._last_time:
            moment = self._last_time + timedelta(microseconds=1)
        self._last_time = moment
        return moment

    def today(self) -> date:
        return timefmt.now().astimezone(self.tz).date()

    def get(self, entity: str, entity_id: str, *, live: bool = True) -> Record:
        record = self.records[entity].get(entity_id)
        if record is None or (live and record.deleted):
            raise SimError(404, f"{entity} {entity_id} not found in realm {self.realm_id}")
        return record

    def check_sync_token(self, record: Record, sync_token: object) -> None:
        """QBO's optimistic lock: a write must carry the current SyncToken (Fault 5010 otherwise)."""
        if sync_token is None or str(sync_token) != str(record.sync_token):
            raise SimError(
                400,
                "Stale Object Error : You and another user were working on this at the same time. "
                "The other user finished before you did, so your work was not saved.",
                code="5010",
            )

    def _touch(self, record: Record, body: dict[str, Any] | None = None) -> datetime:
        moment = self.tick()
        record.sync_token += 1
        record.updated_time = moment
        if body is not None:
            record.body = body
        return moment

    def _change(self, record: Record, operation: str, deleted_id: str | None = None) -> Change:
        return Change(self.realm_id, record.entity, record.id, operation, record.updated_time, deleted_id)

    # --- items ----------------------------------------------------------------------------
    def item_state(self, item_id: str | None, sku: str | None = None) -> ItemState:
        if item_id is not None:
            record = self.records["Item"].get(str(item_id))
            if record is None:
                raise SpecError(f"unknown item {item_id}")
            return record.spec  # type: ignore[return-value]
        for record in self.records["Item"].values():
            if record.spec.sku == sku and record.spec.active:  # type: ignore[union-attr]
                return record.spec  # type: ignore[return-value]
        raise SpecError(f"no active item with Sku {sku!r}")

    def _item_body(self, state: ItemState) -> dict[str, Any]:
        return item_body(state, lambda member: self.item_state(member))

    def create_item(self, spec: ItemSpec) -> tuple[Record, list[Change]]:
        if any(
            r.spec.name.casefold() == spec.name.casefold() and r.spec.active  # type: ignore[union-attr]
            for r in self.records["Item"].values()
        ):
            raise SimError(400, f"Duplicate Name Exists Error: {spec.name}", code="6240")
        components = [(c.item_id, c.qty) for c in spec.components or []]
        if spec.type == "Group":
            for member, _ in components:
                if self.item_state(member).type == "Group":
                    raise SpecError("a bundle cannot contain a bundle")
        elif components:
            raise SpecError("components only for Type Group")
        item_id = str(self._next_item_id)
        state = ItemState(
            id=item_id,
            name=spec.name,
            type=spec.type,
            sku=spec.sku,
            unit_price=spec.unit_price,
            purchase_cost=spec.purchase_cost,
            description=spec.description,
            qty_on_hand=spec.qty_on_hand,
            components=components,
            inv_start_date=self.today() if spec.type == "Inventory" else None,
        )
        body = self._item_body(state)
        self._next_item_id += 1
        moment = self.tick()
        record = Record("Item", item_id, moment, moment, body, state)
        self.records["Item"][item_id] = record
        return record, [self._change(record, "Create")]

    def update_item(self, item_id: str, patch: ItemPatch) -> tuple[Record, list[Change]]:
        record = self.get("Item", item_id)
        state: ItemState = record.spec  # type: ignore[assignment]
        for key, value in patch.model_dump(exclude_unset=True).items():
            if key == "components":
                state.components = [(c["item_id"], Decimal(c["qty"])) for c in value or []]
            else:
                setattr(state, key, value)
        self._touch(record, self._item_body(state))
        return record, [self._change(record, "Update")]

    def delete_item(self, item_id: str) -> tuple[Record, list[Change]]:
        """QBO "deletes" an item by making it inactive (name gets "(deleted)"); it stays readable."""
        record = self.get("Item", item_id)
        state: ItemState = record.spec  # type: ignore[assignment]
        state.active, state.deleted_suffix = False, True
        self._touch(record, self._item_body(state))
        return record, [self._change(record, "Delete")]

    def merge_item(self, item_id: str, into: str) -> tuple[Record, list[Change]]:
        """Merge ``item_id`` into ``into``: the merged item becomes inactive; sales that used it are
        re-pointed to the survivor (SyncToken bumped, no webhook for them); one Merge event
        ``id = survivor, deletedId = merged``."""
        if item_id == into:
            raise SimError(400, "cannot merge an item into itself")
        record = self.get("Item", item_id)
        survivor = self.get("Item", into)
        state: ItemState = record.spec  # type: ignore[assignment]
        if state.type != survivor.spec.type:  # type: ignore[union-attr]
            raise SimError(400, "items of different types cannot be merged")
        state.active, state.deleted_suffix = False, True
        self._touch(record, self._item_body(state))
        for entity in SALES_ENTITIES:
            for txn in self.records[entity].values():
                if txn.deleted or not _uses_item(txn.txn_spec.lines, item_id):
                    continue
                txn.spec = txn.txn_spec.model_copy(update={"lines": _repoint(txn.txn_spec.lines, item_id, into)})
                body, _ = self._build(entity, txn.spec, txn.body["DocNumber"])
                self._touch(txn, void_body(body) if txn.voided else body)
        moment = self._touch(survivor)
        return survivor, [Change(self.realm_id, "Item", into, "Merge", moment, item_id)]

    # --- customers ------------------------------------------------------------------------
    def create_customer(self, spec: CustomerSpec) -> tuple[Record, list[Change]]:
        key = spec.display_name.strip().casefold()
        if not key:
            raise SimError(400, "DisplayName is required", code="2020")
        if key in self.customers:
            raise SimError(
                400,
                f"Duplicate Name Exists Error: The name supplied already exists. : "
                f"Another customer is already using this name ({spec.display_name}).",
                code="6240",
            )
        customer_id = str(self._next_customer_id)
        self._next_customer_id += 1
        state = CustomerState(
            customer_id,
            spec.display_name.strip(),
            spec.given_name,
            spec.family_name,
            spec.company_name,
            spec.email,
            spec.active,
        )
        moment = self.tick()
        record = Record("Customer", customer_id, moment, moment, customer_body(state, self.home_currency), state)
        self.records["Customer"][customer_id] = record
        self.customers[key] = customer_id
        return record, [self._change(record, "Create")]

    def update_customer(self, customer_id: str, changes: dict[str, Any]) -> tuple[Record, list[Change]]:
        record = self.get("Customer", customer_id)
        state: CustomerState = record.spec  # type: ignore[assignment]
        if "display_name" in changes:
            new = str(changes["display_name"]).strip()
            owner = self.customers.get(new.casefold())
            if not new:
                raise SimError(400, "DisplayName is required", code="2020")
            if owner is not None and owner != customer_id:
                raise SimError(400, f"Duplicate Name Exists Error: {new}", code="6240")
            self.customers.pop(state.display_name.casefold(), None)
            self.customers[new.casefold()] = customer_id
        for key, value in changes.items():
            setattr(state, key, value.strip() if key == "display_name" else value)
        self._touch(record, customer_body(state, self.home_currency))
        return record, [self._change(record, "Update")]

    def customer_state(self, customer_id: str) -> CustomerState:
        record = self.records["Customer"].get(str(customer_id))
        if record is None:
            raise SimError(400, f"Invalid Reference Id : Customer {customer_id} does not exist", code="2500")
        return record.spec  # type: ignore[return-value]

    # --- sales forms ----------------------------------------------------------------------
    def _customer_ref(self, name: str) -> dict[str, Any]:
        """The customer called ``name``, created on first use (control-API sales name their customer)."""
        customer_id = self.customers.get(name.strip().casefold())
        if customer_id is None:
            record, _ = self.create_customer(CustomerSpec(display_name=name))
            customer_id = record.id
        return self.customer_state(customer_id).ref()

    def _build(self, entity: str, spec: TxnSpec, doc_number: str) -> tuple[dict[str, Any], bool]:
        ctx = Context(
            item=self.item_state,
            customer_ref=self._customer_ref(spec.customer),
            doc_number=doc_number,
            home_currency=self.home_currency,
            multicurrency=self.multicurrency,
            today=self.today(),
        )
        try:
            body, foreign = build_transaction(entity, spec, ctx)
        except SpecError as exc:
            reference = str(exc).startswith(("unknown item", "no active item"))
            raise SimError(400, str(exc), code="2500" if reference else "6000") from exc
        if foreign and not self.multicurrency:
            self.multicurrency = True  # QBO: turning multicurrency on is permanent
            body, _ = build_transaction(entity, spec, dataclasses.replace(ctx, multicurrency=True))
        return body, foreign

    def create_txn(self, entity: str, spec: TxnSpec) -> tuple[Record, list[Change]]:
        doc_number = spec.doc_number or str(self._doc_numbers[entity])
        body, _ = self._build(entity, spec, doc_number)
        if spec.doc_number is None:
            self._doc_numbers[entity] += 1
        txn_id = str(self._next_txn_id)
        self._next_txn_id += 1
        moment = self.tick()
        record = Record(entity, txn_id, moment, moment, body, spec)
        self.records[entity][txn_id] = record
        return record, [self._change(record, "Create")]

    def update_txn(
        self, entity: str, txn_id: str, patch: dict[str, Any], replace: bool = False
    ) -> tuple[Record, list[Change]]:
        """``patch`` over the stored spec (sparse update); ``replace``: ``patch`` is the whole new spec."""
        record = self.get(entity, txn_id)
        if record.voided:
            raise SimError(400, "a voided transaction cannot be edited")
        base = {} if replace else record.txn_spec.model_dump(exclude_unset=True)
        spec = TxnSpec.model_validate({**base, **patch})
        body, _ = self._build(entity, spec, spec.doc_number or record.body["DocNumber"])
        record.spec = spec
        self._touch(record, body)
        return record, [self._change(record, "Update")]

    def put_raw(self, entity: str, body: dict[str, Any], txn_id: str | None = None) -> tuple[Record, list[Change]]:
        """Store a sales entity body exactly as given (a fixture of a real shape); the simulator
        keeps ``Id``, ``SyncToken`` and ``MetaData`` to itself. With ``txn_id`` it replaces that
        sale's body (an Update), otherwise it adds a new sale (a Create)."""
        body = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "MetaData", "domain", "sparse")}
        if txn_id is not None:
            record = self.get(entity, txn_id)
            self._touch(record, body)
            return record, [self._change(record, "Update")]
        txn_id = str(self._next_txn_id)
        self._next_txn_id += 1
        moment = self.tick()
        record = Record(entity, txn_id, moment, moment, body, TxnSpec(customer="raw"))
        self.records[entity][txn_id] = record
        return record, [self._change(record, "Create")]

    def void_txn(self, entity: str, txn_id: str) -> tuple[Record, list[Change]]:
        record = self.get(entity, txn_id)
        if record.voided:
            raise SimError(400, "transaction is already voided")
        record.voided = True
        self._touch(record, void_body(record.body))
        return record, [self._change(record, "Void")]

    def email_txn(self, entity: str, txn_id: str) -> tuple[Record, list[Change]]:
        record = self.get(entity, txn_id)
        body = {**record.body, "EmailStatus": "EmailSent"}
        self._touch(record, body)
        return record, [self._change(record, "Emailed")]

    def delete_txn(self, entity: str, txn_id: str) -> tuple[Record, list[Change]]:
        record = self.get(entity, txn_id)
        record.deleted = True
        self._touch(record)
        return record, [self._change(record, "Delete")]

    def live(self, entity: str) -> list[Record]:
        return [r for r in self.records[entity].values() if not r.deleted]


def _uses_item(lines: list[LineSpec], item_id: str) -> bool:
    return any(
        line.item_id == item_id or line.group_item_id == item_id or _uses_item(line.lines or [], item_id)
        for line in lines
    )


def _repoint(lines: list[LineSpec], old: str, new: str) -> list[LineSpec]:
    out = []
    for line in lines:
        update: dict[str, Any] = {}
        if line.item_id == old:
            update["item_id"] = new
        if line.group_item_id == old:
            update["group_item_id"] = new
        if line.lines:
            update["lines"] = _repoint(line.lines, old, new)
        out.append(line.model_copy(update=update) if update else line)
    return out


class Store:
    def __init__(self, utc_offset: str):
        self.tz = timefmt.parse_offset(utc_offset)
        self.companies: dict[str, Company] = {}

    def create_company(
        self, realm_id: str | None = None, home_currency: str = "USD", multicurrency: bool = False
    ) -> Company:
        if realm_id is None:
            realm_id = "9130" + "".join(random.choices("0123456789", k=12))
            while realm_id in self.companies:
                realm_id = "9130" + "".join(random.choices("0123456789", k=12))
        if realm_id in self.companies:
            raise SimError(409, f"realm {realm_id} exists")
        company = Company(realm_id, home_currency.upper(), self.tz, multicurrency)
        self.companies[realm_id] = company
        return company

    def company(self, realm_id: str) -> Company:
        company = self.companies.get(realm_id)
        if company is None:
            raise SimError(404, f"unknown realm {realm_id}")
        return company
