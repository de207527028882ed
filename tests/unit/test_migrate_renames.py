"""Renamed migrations: a database that recorded a migration under its old file name
records the new name instead of applying the migration again."""

from shared.migrate import MIGRATIONS, RENAMED, renamed_records


def test_every_renamed_migration_exists_under_its_new_name_only():
    names = {p.name for p in MIGRATIONS.glob("*.sql")}
    for old, new in RENAMED.items():
        assert new in names and old not in names


def test_an_old_name_recorded_is_recorded_again_under_the_new_name():
    done = {"0010_bulk_reference_checks.sql", "0011_relay_room.sql", "0012_sale_cost_keys.sql"}
    assert renamed_records(done) == [("0011_relay_room.sql", "0011_recost_room.sql")]


def test_nothing_to_rename_on_a_new_database_or_one_that_has_the_new_name():
    assert renamed_records(set()) == []
    assert renamed_records({"0011_recost_room.sql"}) == []
    assert renamed_records({"0011_relay_room.sql", "0011_recost_room.sql"}) == []


def test_the_map_is_a_parameter():
    assert renamed_records({"a.sql", "b.sql"}, {"a.sql": "c.sql", "x.sql": "y.sql"}) == [("a.sql", "c.sql")]
