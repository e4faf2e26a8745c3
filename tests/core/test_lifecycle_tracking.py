"""Tracking plan (JSON Schema) and the per-variant warehouse check, with planted instrumentation bugs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest
from dataeng_agents.core.commands.lifecycle import check_tracking, tracking_plan
from dataeng_agents.core.errors import ConfigError
from dataeng_agents.core.lifecycle.demo_data import generate_lifecycle_data, lifecycle_demo_config
from warehouse_copy import copy_duckdb_to_postgres


@pytest.fixture(scope="module")
def buggy(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    path = str(tmp_path_factory.mktemp("tracking") / "bug.duckdb")
    truth = generate_lifecycle_data(path, users=6_000, seed=3, bug_variant="treatment")
    return path, lifecycle_demo_config(truth, path)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    path = str(tmp_path_factory.mktemp("tracking") / "clean.duckdb")
    truth = generate_lifecycle_data(path, users=6_000, seed=3, bug_variant=None)
    return path, lifecycle_demo_config(truth, path)


def test_plan_is_a_valid_versioned_json_schema(clean: tuple[str, dict[str, Any]]) -> None:
    _, cfg = clean
    schema = tracking_plan(cfg)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["version"] == "1.2.0" and schema["$id"].endswith(":1.2.0")
    defs = schema["$defs"]
    # derived from the metric definitions: exposure, the engagement source (minutes), orders (amount)
    assert set(defs) == {"experiment_exposure", "engagement", "orders", "checkout_started"}
    assert "minutes" in defs["engagement"]["required"]
    assert defs["orders"]["x-used-by-metrics"] == ["conversion", "revenue"]
    assert defs["experiment_exposure"]["properties"]["variant"]["enum"] == ["control", "treatment"]
    # the same document, narrowed to one event
    validator = jsonschema.Draft202012Validator(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/checkout_started"},
        format_checker=jsonschema.FormatChecker(),
    )
    good = {
        "user_id": 7,
        "event_ts": "2025-02-03T10:00:00Z",
        "event_name": "checkout_started",
        "price": 12.5,
        "currency": "EUR",
        "loaded_at": "2025-02-03T10:01:00Z",
    }
    assert not list(validator.iter_errors(good))
    bad = {k: v for k, v in good.items() if k != "price"} | {"currency": "XXX"}
    messages = " ".join(e.message for e in validator.iter_errors(bad))
    assert "price" in messages and "XXX" in messages
    # the fingerprint follows the content, the version is the user's
    changed = copy.deepcopy(cfg)
    changed["tracking"]["events"][0]["properties"]["coupon"] = {"type": "string", "required": False}
    assert tracking_plan(changed)["x-fingerprint"] != schema["x-fingerprint"]


def test_planted_dropped_property_is_found_per_variant(buggy: tuple[str, dict[str, Any]]) -> None:
    _, cfg = buggy
    report = check_tracking(cfg)
    assert not report.ok
    ids = {f.id for f in report.findings}
    assert "tracking:checkout_started:treatment:missing_property:price" in ids
    assert "tracking:checkout_started:treatment:nulls:price" in ids
    assert not any(f.variant == "control" for f in report.findings if f.severity == "error")
    stats = {(s.event, s.variant): s for s in report.stats}
    assert (
        stats[("checkout_started", "treatment")].null_counts["price"]
        == stats[("checkout_started", "treatment")].events
    )
    assert stats[("checkout_started", "control")].null_counts["price"] == 0
    assert "lack property price" in report.to_markdown()


def test_clean_instrumentation_passes(clean: tuple[str, dict[str, Any]]) -> None:
    _, cfg = clean
    report = check_tracking(cfg)
    assert report.ok, report.findings
    assert all(s.exposed_units > 0 and s.events > 0 for s in report.stats)
    assert report.summary()["errors"] == 0


def test_malformed_late_and_missing_events_are_reported(
    clean: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    path, cfg = clean
    copy_path = tmp_path / "broken.duckdb"
    con = duckdb.connect(str(copy_path))
    con.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
    for t in ("sessions", "engagement", "orders", "exposures"):
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM src.{t}")
    # treatment: a currency code outside the enum on a third of the rows, and a slow pipeline
    con.execute(
        """CREATE TABLE checkout_events AS
           SELECT c.user_id, c.event_ts, c.event_name, c.price,
                  CASE WHEN x.variant = 'treatment' AND c.user_id % 3 = 0 THEN 'eur' ELSE c.currency END AS currency,
                  CASE WHEN x.variant = 'treatment' THEN c.loaded_at + INTERVAL 12 HOUR ELSE c.loaded_at END AS loaded_at
           FROM src.checkout_events c JOIN src.exposures x USING (user_id)"""
    )
    con.execute("DETACH src")
    con.close()
    broken = copy.deepcopy(cfg)
    broken["warehouse"] = f"duckdb:///{copy_path}"
    broken["tracking"]["events"].append(
        {
            "name": "coupon_applied",
            "table": "checkout_events",
            "unit_column": "user_id",
            "timestamp_column": "event_ts",
            "event_column": "event_name",
        }
    )
    broken["tracking"]["events"].append({"name": "legacy", "table": "no_such_table"})
    report = check_tracking(broken)
    kinds = {(f.kind, f.event, f.variant, f.property) for f in report.findings}
    assert ("malformed_property", "checkout_started", "treatment", "currency") in kinds
    assert ("late_events", "checkout_started", "treatment", None) in kinds
    assert ("variant_difference", "checkout_started", "treatment", None) in kinds  # late share differs
    assert ("missing_event", "coupon_applied", "control", None) in kinds
    assert ("missing_event", "coupon_applied", "treatment", None) in kinds
    assert ("missing_table", "legacy", None, None) in kinds
    assert not any(k[2] == "control" and k[0] in ("malformed_property", "late_events") for k in kinds)


def test_tracking_config_errors_name_the_path(clean: tuple[str, dict[str, Any]]) -> None:
    _, cfg = clean
    bad = copy.deepcopy(cfg)
    bad["tracking"]["events"][0]["table"] = "checkout_events; DROP TABLE exposures"
    with pytest.raises(ConfigError) as err:
        tracking_plan(bad)
    assert err.value.field == "tracking.events[0]"
    bad = copy.deepcopy(cfg)
    bad["tracking"]["events"][0]["properties"]["price"]["type"] = "money"
    with pytest.raises(ConfigError) as err:
        tracking_plan(bad)
    assert err.value.field == "tracking.events[0].properties.price.type"
    bad = copy.deepcopy(cfg)
    bad["tracking"]["version"] = "v2"
    with pytest.raises(ConfigError) as err:
        tracking_plan(bad)
    assert err.value.field == "tracking.version"


@pytest.mark.postgres
def test_tracking_check_on_postgres_finds_the_same_bug(
    postgres_schema: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = postgres_schema
    path = str(tmp_path / "pg.duckdb")
    truth = generate_lifecycle_data(path, users=1_500, seed=9, bug_variant="treatment")
    cfg = lifecycle_demo_config(truth, path)
    copy_duckdb_to_postgres(path, url, schema, ["exposures", "checkout_events", "engagement", "orders"])
    pg_cfg = copy.deepcopy(cfg)
    pg_cfg["assignment"]["table"] = f"{schema}.exposures"
    for s in pg_cfg["sources"].values():
        s["table"] = f"{schema}.{s['table']}"
    pg_cfg["tracking"]["events"][0]["table"] = f"{schema}.checkout_events"
    pg = check_tracking(pg_cfg, url)
    duck = check_tracking(cfg)
    assert json.dumps([s.model_dump() for s in pg.stats]) == json.dumps([s.model_dump() for s in duck.stats])
    assert {f.id for f in pg.findings} == {f.id for f in duck.findings}
    assert "tracking:checkout_started:treatment:missing_property:price" in {f.id for f in pg.findings}
