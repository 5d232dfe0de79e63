"""Fixtures for the quality tests, and the detection-rate table printed after the run.

The real-data tests append one line per (file, rule) to :data:`DETECTION`; the terminal
summary hook prints them as a table at the end of any pytest run that collected them
(``pytest tests/quality`` shows it without extra flags; ``-p no:terminal`` hides it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tickvault.calendars import TradingCalendar, get_calendar


@dataclass(frozen=True)
class Detection:
    """How one rule did on one file against the file's known-bad rows."""

    dataset: str
    rule: str
    bad: int  # known-bad rows
    detected: int  # known-bad rows flagged by the rule
    good: int  # rows not known to be bad
    false_pos: int  # good rows flagged by the rule
    hard_on_good: int  # good rows flagged by ANY hard rule

    @property
    def recall(self) -> float:
        return self.detected / self.bad if self.bad else 1.0

    @property
    def fp_rate(self) -> float:
        return self.false_pos / self.good if self.good else 0.0

    def line(self) -> str:
        recall = f"{self.recall:.1%}" if self.bad else "-"
        return (f"{self.dataset:<40} {self.rule:<18} {self.bad:>5} {self.detected:>5} {recall:>7} "
                f"{self.good:>5} {self.false_pos:>4} {self.fp_rate:>7.2%} {self.hard_on_good:>5}")


DETECTION: list[Detection] = []


@pytest.fixture(scope="session")
def detection_log() -> list[Detection]:
    """Where real-data tests record their detection numbers."""
    return DETECTION


@pytest.fixture(scope="session")
def xnys() -> TradingCalendar:
    """The NYSE calendar (US files)."""
    return get_calendar("XNYS")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not DETECTION:
        return
    tr = terminalreporter
    tr.section("quality rules on real data: detection and false positives")
    tr.write_line(f"{'dataset':<40} {'rule':<18} {'bad':>5} {'hit':>5} {'recall':>7} {'good':>5} {'FP':>4} "
                  f"{'FP rate':>7} {'hard!':>5}")
    for d in sorted(DETECTION, key=lambda d: (d.dataset, d.rule)):
        tr.write_line(d.line())
    tr.write_line("bad: known-bad rows (differ from the -fixed twin / the undamaged original); hit: of those, "
                  "flagged by the rule;")
    tr.write_line("FP: good rows the rule flagged (soft flags included); hard!: good rows flagged by any hard rule.")
