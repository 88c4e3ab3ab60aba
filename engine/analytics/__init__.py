"""Analytics on the journal: metrics, validation, backtests, readiness, reports."""
