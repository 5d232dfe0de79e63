"""The public surface of tickvault.quality: names, policy, report shape, partition contract."""

from __future__ import annotations

import pyarrow as pa
import pytest

import tickvault.quality as quality
from tickvault import config
from tickvault.errors import InvalidInput, InvalidTimeframe, SchemaError
from tickvault.model import BAR_SCHEMA, FLAGS_SCHEMA, QualityReport
from tickvault.quality import BAD_ROWS_SCHEMA, DEFAULT_HARD_RULES, RULES, Severity, check, partition

from ._bars import bars, daily, random_walk


def test_public_names_are_pinned() -> None:
    assert sorted(quality.__all__) == sorted([
        "BAD_ROWS_SCHEMA", "COMMON_SPLIT_RATIOS", "DEFAULT_HARD_RULES", "MINOR_UNIT_CURRENCIES", "RULES",
        "SOFT_WEIGHT", "Rule", "Severity", "check", "partition", "score_of",
    ])


def test_default_policy_matches_the_settings_default() -> None:
    assert DEFAULT_HARD_RULES == config.DEFAULT_HARD_RULES
    assert config.Settings().hard_rules == DEFAULT_HARD_RULES


def test_every_rule_is_described() -> None:
    assert list(RULES) == [r.name for r in RULES.values()]
    assert len(RULES) == 16
    for name, rule in RULES.items():
        assert rule.summary
        assert rule.severity in (Severity.HARD, Severity.SOFT)
        assert (name in DEFAULT_HARD_RULES) == (rule.severity is Severity.HARD)


def test_report_shape_and_counts_include_zeros() -> None:
    table = random_walk(daily("2024-01-01", 20), seed=1)
    report = check(table, symbol="ABC", timeframe="1d")
    assert isinstance(report, QualityReport)
    assert report.symbol == "ABC"
    assert report.timeframe == "1d"
    assert report.rows == 20
    assert report.flags.schema == FLAGS_SCHEMA
    assert report.hard_rules == frozenset(DEFAULT_HARD_RULES)
    ran = set(RULES) - {"outside_session", "gap"}  # these need a calendar
    assert set(report.counts) == ran
    assert all(v == 0 for v in report.counts.values())
    assert report.score == 1.0
    assert QualityReport.from_json(report.to_json()) == QualityReport.from_json(report.to_json())


def test_report_survives_json_with_null_timestamps() -> None:
    ts = daily("2024-01-01", 3)
    table = bars([ts[0], None, ts[2]], [1.0, 1.0, 1.0])
    report = check(table, symbol="X", timeframe="1d")
    again = QualityReport.from_json(report.to_json())
    assert again.flags.equals(report.flags)
    assert again.counts == report.counts


def test_policy_decides_severity_and_quarantine() -> None:
    table = bars(daily("2024-01-01", 3), [1.0, 0.0, 1.0])
    strict = check(table, symbol="X", timeframe="1d")
    good, bad = partition(table, strict)
    assert good.num_rows == 2
    assert bad.column("rule").to_pylist() == ["non_positive_price"]
    assert bad.column("reason").to_pylist()[0].startswith("non_positive_price: ")
    lenient = check(table, symbol="X", timeframe="1d", hard_rules=())
    assert lenient.flags.column("severity").to_pylist() == ["soft"]
    good, bad = partition(table, lenient)
    assert good.equals(table)
    assert bad.num_rows == 0
    assert lenient.score == pytest.approx(1 - 0.25 / 3)
    assert strict.score == pytest.approx(1 - 1 / 3)


def test_bad_rows_carry_every_hard_rule_comma_joined() -> None:
    ts = daily("2024-01-01", 2)
    table = bars([ts[0], ts[0], ts[1]], [-1.0, 1.0, 1.0], h=[5.0, 1.0, 1.0], lo=[2.0, 1.0, 1.0])
    good, bad = partition(table, check(table, symbol="X", timeframe="1d"))
    assert bad.schema == BAD_ROWS_SCHEMA
    assert good.schema == BAR_SCHEMA
    assert bad.column("rule").to_pylist() == ["non_positive_price,ohlc_consistency,duplicate_ts"]


def test_unknown_rules_and_parameters_are_rejected() -> None:
    table = bars(daily("2024-01-01", 1), [1.0])
    with pytest.raises(InvalidInput, match="unknown quality rule"):
        check(table, symbol="X", timeframe="1d", hard_rules=["nope"])
    with pytest.raises(InvalidInput, match="not one string"):
        check(table, symbol="X", timeframe="1d", hard_rules="unit_jump")
    with pytest.raises(InvalidInput, match="unknown parameter"):
        check(table, symbol="X", timeframe="1d", params={"spike": {"zz": 1}})
    with pytest.raises(InvalidInput, match="unknown quality rule"):
        check(table, symbol="X", timeframe="1d", params={"nope": {}})
    with pytest.raises(InvalidTimeframe):
        check(table, symbol="X", timeframe="fortnight")


def test_partition_refuses_a_foreign_report_and_unstorable_rows() -> None:
    ts = daily("2024-01-01", 2)
    table = bars([ts[0], None], [1.0, 1.0])
    with pytest.raises(InvalidInput, match="report covers"):
        partition(table.slice(0, 1), check(table, symbol="X", timeframe="1d"))
    soft = check(table, symbol="X", timeframe="1d", hard_rules=())
    with pytest.raises(SchemaError, match="no timestamp"):
        partition(table, soft)


def test_bad_context_is_a_schema_error() -> None:
    table = bars(daily("2024-01-02", 1), [1.0])
    with pytest.raises(SchemaError, match="context"):
        check(table, symbol="X", timeframe="1d", context=table.drop_columns(["close"]))


def test_lossless_casts_are_accepted_without_changing_values() -> None:
    table = random_walk(daily("2024-01-01", 5), seed=2)
    as_ints = table.set_column(5, "volume", table.column("volume").cast(pa.int64()))
    ny = as_ints.set_column(0, "ts", table.column("ts").cast(pa.timestamp("ns", tz="America/New_York")))
    report = check(ny, symbol="X", timeframe="1d")
    assert report.flags.num_rows == 0
    good, _ = partition(ny, report)
    assert good.equals(table)


def test_naive_timestamps_are_a_schema_failure() -> None:
    table = random_walk(daily("2024-01-01", 3), seed=3)
    naive = table.set_column(0, "ts", table.column("ts").cast(pa.timestamp("us")))
    report = check(naive, symbol="X", timeframe="1d")
    assert report.counts == {"required_columns": 3}
    assert "naive" in report.flags.column("reason")[0].as_py()
