"""Journals built row by row for the analytics tests, through the engine's own Journal class.

Helpers only (no tests here); named test_analytics_* to sit with the tests that use them.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.journal import Journal

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def at(day: int, hour: float) -> datetime:
    """Day 1 is 2026-01-05 (UTC)."""
    return T0 + timedelta(days=day - 1, hours=hour)


def session(ts: datetime, cash: str = "10000", n: int = 1) -> tuple:
    return ("session", ts, None, {"session": n, "config": {"paper": {"starting_cash": cash}}})


def equity(ts: datetime, eq: str, realized: str = "0", fees: str = "0") -> tuple:
    return ("equity", ts, None, {"equity": Decimal(eq), "cash": Decimal(eq), "realized": Decimal(realized),
                                 "unrealized": Decimal(0), "fees": Decimal(fees), "positions": 0})


class Fills:
    """Fill rows with position_after kept per symbol, as OrderManager journals them."""

    def __init__(self) -> None:
        self.pos: dict[str, Decimal] = {}
        self.n = 0

    def __call__(self, ts: datetime, symbol: str, side: str, qty: str, price: str, fee: str,
                 realized: str = "0", purpose: str = "entry") -> tuple:
        q = Decimal(qty)
        self.pos[symbol] = self.pos.get(symbol, Decimal(0)) + (q if side == "buy" else -q)
        self.n += 1
        return ("fill", ts, f"o{self.n}", {
            "symbol": symbol, "side": side, "quantity": q, "price": Decimal(price), "fee": Decimal(fee),
            "liquidity": "taker", "fill_id": f"F{self.n}", "realized": Decimal(realized), "purpose": purpose,
            "position_after": self.pos[symbol]})


def write_journal(path: Path, rows: list[tuple]) -> Path:
    async def go() -> None:
        j = await Journal.open(path)
        for kind, ts, ref, data in rows:
            j.append(kind, ts, ref, data)
        await j.close()

    asyncio.run(go())
    return path


def hand_worked_rows() -> list[tuple[str, datetime, Any, dict]]:
    """Five round trips and three days of equity, worked by hand in docs/metrics.md's example.

    nets in close order: +89.90 (BTC), +39.65 (BTC short), -161.85 (ETH), -2.00 (SOL), +93.90 (ETH)
    """
    f = Fills()
    return [
        session(at(1, 0)),
        equity(at(1, 9), "10000"),
        f(at(1, 9.5), "BTC/USD", "buy", "0.1", "50000", "5.00"),
        f(at(1, 10), "BTC/USD", "sell", "0.1", "51000", "5.10", "100", "exit"),
        equity(at(1, 12), "10200"),
        f(at(1, 13), "BTC/USD", "sell", "0.1", "52000", "5.20"),
        f(at(1, 14), "BTC/USD", "buy", "0.1", "51500", "5.15", "50", "exit"),
        equity(at(1, 20), "10098"),
        f(at(2, 1), "ETH/USD", "buy", "2", "3000", "6.00"),
        f(at(2, 2), "ETH/USD", "sell", "1", "2950", "2.95", "-50", "exit"),
        f(at(2, 3), "ETH/USD", "sell", "1", "2900", "2.90", "-100", "exit"),
        equity(at(2, 10), "9894"),
        f(at(2, 11), "SOL/USD", "buy", "10", "100", "1.00"),
        f(at(2, 12), "SOL/USD", "sell", "10", "100", "1.00", "0", "stop"),
        equity(at(2, 20), "9996"),
        f(at(3, 1), "ETH/USD", "buy", "1", "3000", "3.00"),
        f(at(3, 2), "ETH/USD", "sell", "1", "3100", "3.10", "100", "exit"),
        equity(at(3, 12), "10200"),
        equity(at(3, 20), "10059.60"),
    ]
