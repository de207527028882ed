"""The rebuild belongs to costing (``python -m services.costing.rebuild --tenant ID``);
ingest's replay keeps its filters, has no ``--rebuild``, and imports nothing of costing."""

import ast
import uuid
from pathlib import Path

import pytest

from services.costing import rebuild
from services.ingest import replay


def test_rebuild_takes_a_tenant():
    tenant = uuid.uuid4()
    assert rebuild._parser().parse_args(["--tenant", str(tenant)]).tenant == tenant
    with pytest.raises(SystemExit):
        rebuild._parser().parse_args([])


def test_replay_keeps_its_filters_and_has_no_rebuild():
    args = replay._parser().parse_args(
        [
            "--tenant",
            str(uuid.uuid4()),
            "--source",
            "manual",
            "--event-type",
            "sale.upserted",
            "--since",
            "2026-02-01T00:00:00+00:00",
        ]
    )
    assert args.source == "manual" and args.event_types == ["sale.upserted"]
    with pytest.raises(SystemExit):
        replay._parser().parse_args(["--tenant", str(uuid.uuid4()), "--rebuild"])


def test_ingest_imports_nothing_from_costing():
    root = Path(replay.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        assert not [m for m in modules if m.startswith("services.costing")], path
