"""Run the rules, apply the policy, split a batch into what may be stored and what may not.

:func:`check` is pure: it reads the batch (and optional stored context, calendar and
corporate actions) and returns a :class:`~tickvault.model.QualityReport`; nothing is
modified, dropped or "repaired". :func:`partition` then applies the report: rows with a
*hard* flag go to quarantine with their reasons, every other row is stored as given, soft
flags and all.

Score
-----
``score = 1 - (H + 0.25 * S) / N`` for ``N`` rows, where ``H`` is the number of rows with at
least one hard flag and ``S`` the number of rows with soft flags only; 1.0 for an empty batch.
A batch with no flag scores 1, one where every row is quarantined scores 0, and a fully
soft-flagged batch scores 0.75, so the score orders batches by how much of them is usable.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import pyarrow as pa

from tickvault.calendars import TradingCalendar
from tickvault.errors import InvalidInput, SchemaError
from tickvault.model import BAR_SCHEMA, FLAGS_SCHEMA, CorporateAction, QualityReport, Timeframe
from tickvault.quality import _dividends, _jumps, _row_rules, _stats, _time_rules
from tickvault.quality._prepare import LOOSE_SCHEMA, coerce, prepare
from tickvault.quality._rule import Finding, Rule, Severity

__all__ = ["DEFAULT_HARD_RULES", "BAD_ROWS_SCHEMA", "RULES", "SOFT_WEIGHT", "check", "partition", "score_of"]

H, S = Severity.HARD, Severity.SOFT

_RULE_LIST = (
    Rule("required_columns", H, "missing or unreadable column; a row without ts or a price",
         _row_rules.required_columns),
    Rule("non_finite_price", H, "NaN or infinite open/high/low/close", _row_rules.non_finite_price),
    Rule("non_positive_price", H, "a price of zero or below", _row_rules.non_positive_price),
    Rule("negative_volume", H, "volume below zero or infinite", _row_rules.negative_volume),
    Rule("ohlc_consistency", H, "high below max(open, close), low above min(open, close), low above high",
         _row_rules.ohlc_consistency, {"rtol": 1e-6}),
    Rule("duplicate_ts", H, "a timestamp repeated in the batch (all but the last occurrence)",
         _time_rules.duplicate_ts),
    Rule("out_of_order", S, "a row earlier than the row before it", _time_rules.out_of_order),
    Rule("misaligned_ts", H, "a timestamp off the timeframe's (session-aligned) grid", _time_rules.misaligned_ts),
    Rule("outside_session", S, "a bar outside every session of the calendar (holiday, weekend, night)",
         _time_rules.outside_session),
    Rule("gap", S, "expected bars missing before this one (per the calendar)", _time_rules.gap),
    Rule("unit_jump", H, "prices ~100× (or ≥1000×) off the reference level: pence/pounds, cents/dollars",
         _jumps.unit_jump, {"tol": 0.15}),
    Rule("split_jump", S, "on the far side of a split-like jump that no known split explains", _jumps.split_jump,
         {"rtol": 0.03, "z": 6.0}),
    Rule("split_mismatch", S, "a known split's ex-date where prices do not jump by its ratio", _jumps.split_mismatch,
         {"rtol": 0.15}),
    Rule("spike", S, "a price far from the local median against robust volatility", _stats.spike,
         {"window": 7, "z": 12.0, "vol_window": 63, "vol_floor": 1e-3}),
    Rule("stale_run", S, "a run of identical bars (OHLC and volume)", _stats.stale_run, {"min_run": 5}),
    Rule("dividend_anomaly", S, "a repeated or implausibly large dividend on this ex-date", _dividends.dividend_anomaly,
         {"window_days": 7, "max_yield": 0.25}),
)

#: Every rule by name, in the order they run and are reported.
RULES: Mapping[str, Rule] = MappingProxyType({r.name: r for r in _RULE_LIST})

#: Rules quarantining their rows unless the policy says otherwise (== ``tickvault.config.DEFAULT_HARD_RULES``).
DEFAULT_HARD_RULES: tuple[str, ...] = tuple(r.name for r in _RULE_LIST if r.severity is Severity.HARD)

#: Weight of a soft-only row in the score (a hard row weighs 1).
SOFT_WEIGHT = 0.25

#: Quarantined rows: the bar columns (``ts`` may be null) plus the hard rules and reasons.
BAD_ROWS_SCHEMA = pa.schema([*LOOSE_SCHEMA, pa.field("rule", pa.string()), pa.field("reason", pa.string())])

_ORDER = {name: k for k, name in enumerate(RULES)}


def _policy(hard_rules: Collection[str] | None) -> frozenset[str]:
    if hard_rules is None:
        return frozenset(DEFAULT_HARD_RULES)
    if isinstance(hard_rules, str):
        raise InvalidInput("hard_rules must be a collection of rule names, not one string", hard_rules=hard_rules)
    unknown = sorted(set(hard_rules) - set(RULES))
    if unknown:
        raise InvalidInput(f"unknown quality rule(s) {', '.join(unknown)}; known: {', '.join(RULES)}")
    return frozenset(hard_rules)


def _param_overrides(params: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict[str, float]]:
    """Every rule's parameters: its defaults (``RULES[name].params``) updated by ``params``."""
    out: dict[str, dict[str, float]] = {name: dict(rule.params) for name, rule in RULES.items()}
    for name, values in (params or {}).items():
        rule = RULES.get(name)
        if rule is None:
            raise InvalidInput(f"parameters given for unknown quality rule {name!r}")
        bad = sorted(set(values) - set(rule.params))
        if bad:
            raise InvalidInput(f"unknown parameter(s) {', '.join(bad)} for rule {name}; "
                               f"known: {', '.join(rule.params) or 'none'}")
        out[name].update({k: float(v) for k, v in values.items()})
    return out


def score_of(n: int, hard_rows: int, soft_only_rows: int) -> float:
    """The report score: ``1 - (hard_rows + SOFT_WEIGHT * soft_only_rows) / n``, clipped to [0, 1].

    Parameters
    ----------
    n
        Rows checked (an empty batch scores 1.0).
    hard_rows
        Rows with at least one hard flag.
    soft_only_rows
        Rows with soft flags and no hard flag.
    """
    if n <= 0:
        return 1.0
    return max(0.0, min(1.0, 1.0 - (hard_rows + SOFT_WEIGHT * soft_only_rows) / n))


def check(table: pa.Table, *, symbol: str, timeframe: str | Timeframe, calendar: TradingCalendar | None = None,
          actions: Sequence[CorporateAction] = (), hard_rules: Collection[str] | None = None,
          context: pa.Table | None = None, currency: str | None = None,
          params: Mapping[str, Mapping[str, float]] | None = None) -> QualityReport:
    """Run every quality rule over a batch of bars.

    Parameters
    ----------
    table
        Bars in :data:`~tickvault.model.BAR_SCHEMA` (other shapes are reported, not raised:
        a missing or unreadable column flags every row under ``required_columns``). Rows may
        be in any order and may repeat; they are judged as given and never modified.
    symbol, timeframe
        What the batch is (``timeframe`` sets the bar grid).
    calendar
        The instrument's :class:`~tickvault.calendars.TradingCalendar`. Without it, alignment
        is checked on the UTC grid only and ``outside_session`` / ``gap`` do not run.
    actions
        Known corporate actions: splits explain jumps; dividends are sanity-checked.
    hard_rules
        The policy: rules whose rows are quarantined (default :data:`DEFAULT_HARD_RULES`).
    context
        Stored bars just before the batch (BAR_SCHEMA). They feed rolling statistics and
        jump detection across the seam and set the reference price level; they are never
        flagged themselves.
    currency
        Quote currency when known. A minor unit (``GBp``, ``ZAc``, ``ILA``) settles which
        side of a ×100 switch is right when there is no context.
    params
        Per-rule parameter overrides, e.g. ``{"spike": {"z": 8}}`` (see ``RULES[name].params``).

    Returns
    -------
    QualityReport
        ``counts`` holds every rule that ran (0 when it flagged nothing; a rule that could not
        run, such as ``gap`` without a calendar, is absent); ``flags`` one row per (row, rule);
        ``created_us`` is 0 (the caller stamps it; this function is pure).

    Raises
    ------
    InvalidInput
        Unknown rule names in ``hard_rules`` or ``params``.
    InvalidTimeframe
        If ``timeframe`` cannot be parsed.
    SchemaError
        If ``context`` is not valid BAR_SCHEMA data.
    """
    tf = Timeframe.parse(timeframe)
    policy = _policy(hard_rules)
    overrides = _param_overrides(params)
    batch = prepare(table, timeframe=tf, calendar=calendar, actions=actions, currency=currency,
                    context=context, params=overrides)
    results: dict[str, Finding] = {}
    for name, rule in RULES.items():
        if batch.problems and name != "required_columns":
            continue  # nothing else is meaningful until the columns are readable
        found = rule(batch)
        if found is not None:
            results[name] = found
    return _report(symbol, str(tf), batch.n, batch.ts, batch.ts_valid, results, policy)


def _report(symbol: str, timeframe: str, n: int, ts: np.ndarray, ts_valid: np.ndarray,
            results: Mapping[str, Finding], policy: frozenset[str]) -> QualityReport:
    rows_l, rules_l, reasons_l = [], [], []
    for name, f in results.items():
        rows_l.append(f.rows)
        rules_l.extend([name] * f.rows.size)
        reasons_l.extend(f.reasons)
    rows = np.concatenate(rows_l) if rows_l else np.empty(0, dtype=np.int64)
    rule_arr = np.asarray(rules_l, dtype=object)
    order = np.lexsort((np.asarray([_ORDER[r] for r in rules_l], dtype=np.int64), rows)) if rows.size else rows
    rows = rows[order]
    rule_arr = rule_arr[order]
    reasons = [reasons_l[k] for k in order]
    hard = np.isin(rule_arr, list(policy)) if rows.size else np.zeros(0, dtype=bool)
    flag_ts = pa.array(ts[rows], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    if rows.size and not ts_valid[rows].all():
        flag_ts = pa.array(np.where(ts_valid[rows], ts[rows], 0), pa.int64(),
                           mask=~ts_valid[rows]).cast(pa.timestamp("us", tz="UTC"))
    flags = pa.Table.from_arrays(
        [flag_ts, pa.array(rows, pa.int64()), pa.array(rule_arr.tolist(), pa.string()),
         pa.array(np.where(hard, "hard", "soft").tolist(), pa.string()), pa.array(reasons, pa.string())],
        schema=FLAGS_SCHEMA,
    )
    hard_rows = np.unique(rows[hard])
    soft_only = np.setdiff1d(np.unique(rows[~hard]), hard_rows)
    counts = {name: int(np.unique(f.rows).size) for name, f in results.items()}
    return QualityReport(symbol=symbol, timeframe=timeframe, rows=n, counts=counts, hard_rules=policy, flags=flags,
                         score=score_of(n, int(hard_rows.size), int(soft_only.size)), created_us=0)


def partition(table: pa.Table, report: QualityReport) -> tuple[pa.Table, pa.Table]:
    """Split a checked batch into storable rows and quarantined rows.

    Parameters
    ----------
    table
        The batch passed to :func:`check`.
    report
        Its report (the policy in force is the flags' ``severity``).

    Returns
    -------
    (good, bad)
        ``good``: rows without a hard flag, in input order, in :data:`BAR_SCHEMA`, values
        untouched (soft-flagged rows included). ``bad``: rows with at least one hard flag,
        in :data:`BAD_ROWS_SCHEMA`: the bar columns plus ``rule`` (the row's hard rules,
        comma-joined) and ``reason`` (their reasons, ``; ``-joined).

    Raises
    ------
    InvalidInput
        If the report was made for a batch of another size.
    SchemaError
        If good rows cannot be expressed in BAR_SCHEMA (a structural problem that the
        policy did not make hard).
    """
    coerced, problems = coerce(table)
    n = coerced.num_rows
    if report.rows != n:
        raise InvalidInput(f"report covers {report.rows} rows but the table has {n}", symbol=report.symbol)
    flags = report.flags
    sev = np.asarray(flags.column("severity").to_pylist(), dtype=object)
    hard = sev == "hard"
    f_rows = flags.column("row").to_numpy()[hard] if flags.num_rows else np.empty(0, dtype=np.int64)
    bad_mask = np.zeros(n, dtype=bool)
    bad_mask[f_rows] = True
    good_idx = np.flatnonzero(~bad_mask)
    bad_idx = np.flatnonzero(bad_mask)
    good = coerced.take(pa.array(good_idx, pa.int64()))
    if good.num_rows and (problems or good.column("ts").null_count):
        raise SchemaError("rows that cannot be stored passed the quality policy: "
                          + ("; ".join(problems) if problems else "a row has no timestamp")
                          + " (make required_columns a hard rule)")
    good = good.cast(BAR_SCHEMA)
    if bad_idx.size == 0:
        return good, BAD_ROWS_SCHEMA.empty_table()
    rules = np.asarray(flags.column("rule").to_pylist(), dtype=object)[hard]
    reasons = np.asarray(flags.column("reason").to_pylist(), dtype=object)[hard]
    by_rule: dict[int, list[str]] = {}
    by_reason: dict[int, list[str]] = {}
    for r, rule, why in zip(f_rows.tolist(), rules.tolist(), reasons.tolist(), strict=True):
        by_rule.setdefault(r, []).append(rule)
        by_reason.setdefault(r, []).append(f"{rule}: {why}")
    bad = coerced.take(pa.array(bad_idx, pa.int64()))
    bad = bad.append_column(BAD_ROWS_SCHEMA.field("rule"),
                            pa.array([",".join(by_rule[int(i)]) for i in bad_idx], pa.string()))
    bad = bad.append_column(BAD_ROWS_SCHEMA.field("reason"),
                            pa.array(["; ".join(by_reason[int(i)]) for i in bad_idx], pa.string()))
    return good, bad
