"""The weekly review's venue incidents list what the venue did wrong, by the kinds the engine
really raises: a late order found after it was given up, a restored order not confirmed, a
rate-limit window, a fill booked twice by the venue (journaled as `duplicate_fill`)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from engine.analytics.journal_data import JournalData, Row
from engine.analytics.metrics import compute
from engine.analytics.report import _review

T = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)


def test_the_venue_incidents_name_the_kinds_the_engine_raises():
    rows = [
        Row(1, T, "session", None, {"config": {"paper": {"starting_cash": "10000"}}}),
        Row(2, T, "alert", "venue_late_order", {"severity": "critical", "message": "tc-1 was reported rejected"}),
        Row(3, T, "alert", "restored_unconfirmed", {"severity": "critical", "message": "tc-2 not confirmed"}),
        Row(4, T, "alert", "venue_rate_limit", {"severity": "warning", "message": "quiet for 30 s"}),
        Row(5, T, "duplicate_fill", "tc-3", {"fill_id": "binance:5000"}),
        Row(6, T, "alert", "paused", {"severity": "info", "message": "not the venue's"}),
    ]
    data = JournalData("j.sqlite", rows)
    review = _review(data, compute(data, capital=Decimal(10000)))
    kinds = [e["kind"] for e in review["incidents"]["venue_errors"]]
    assert sorted(kinds) == ["duplicate_fill", "restored_unconfirmed", "venue_late_order", "venue_rate_limit"]
