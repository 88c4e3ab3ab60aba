"""Market-data feeds: the simulated market and CSV replay."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from engine.feeds import (
    REGIMES,
    CsvFeedError,
    CsvReplayFeed,
    MarketFeed,
    SimulatedMarket,
    build_feed,
)
from engine.profile import FeedConfig

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
SYMS = ["BTC/USD", "ETH/USD", "SOL/USD", "LTC/USD"]


def run(feed, n):
    return [feed.next_batch() for _ in range(n)]


def as_tuples(batches):
    return [
        (q.symbol, q.ts, q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume)
        for batch in batches
        for q in batch
    ]


def mids(feed, n, symbol):
    out = []
    for _ in range(n):
        (q,) = [q for q in feed.next_batch() if q.symbol == symbol]
        out.append(float(q.mid))
    return out


# --- simulated market ------------------------------------------------------------------------


def test_same_seed_same_quotes_and_different_seed_differs():
    a = SimulatedMarket(SYMS, seed=42, start=START, spike_probability=0.01, gap_probability=0.01)
    b = SimulatedMarket(SYMS, seed=42, start=START, spike_probability=0.01, gap_probability=0.01)
    c = SimulatedMarket(SYMS, seed=43, start=START, spike_probability=0.01, gap_probability=0.01)
    qa, qb, qc = as_tuples(run(a, 2000)), as_tuples(run(b, 2000)), as_tuples(run(c, 2000))
    assert qa == qb
    assert [e for e in a.events] == [e for e in b.events]
    assert qa != qc
    assert [(q[2], q[3]) for q in qa] != [(q[2], q[3]) for q in qc]


def test_symbol_path_does_not_depend_on_other_symbols():
    alone = SimulatedMarket(["ETH/USD"], seed=5, start=START)
    together = SimulatedMarket(["BTC/USD", "ETH/USD"], seed=5, start=START)
    assert as_tuples(run(alone, 300)) == as_tuples([[b[1]] for b in run(together, 300)])


def test_quote_invariants_hold_even_with_many_anomalies():
    feed = SimulatedMarket(SYMS + ["DOGE/USD", "ZZZ/USD"], seed=1, start=START,
                           spike_probability=0.05, gap_probability=0.05)  # fmt: skip
    for batch in run(feed, 3000):
        assert [q.symbol for q in batch] == feed.symbols
        assert len({q.ts for q in batch}) == 1
        for q in batch:
            for v in (q.bid, q.ask, q.bid_size, q.ask_size, q.last, q.volume):
                assert type(v) is Decimal
            tick = feed.tick_size(q.symbol)
            assert 0 < q.bid < q.ask
            assert q.bid <= q.last <= q.ask
            assert q.bid % tick == 0 and q.ask % tick == 0 and q.last % tick == 0
            assert q.bid_size > 0 and q.ask_size > 0 and q.volume >= 0


def test_starting_prices_are_realistic_and_unknown_symbols_deterministic():
    feed = SimulatedMarket(SYMS + ["FOO/USD"], seed=9, start=START)
    first = {q.symbol: q.mid for q in feed.next_batch()}
    for sym, level in {"BTC/USD": 60000, "ETH/USD": 3000, "SOL/USD": 150, "LTC/USD": 80}.items():
        assert abs(first[sym] / level - 1) < Decimal("0.01"), sym
    assert 20 <= first["FOO/USD"] <= 500
    again = SimulatedMarket(["FOO/USD"], seed=1234, start=START).next_batch()[0].mid
    assert abs(again / first["FOO/USD"] - 1) < Decimal("0.01")  # price level from the name, not the seed


def test_timestamps_step_by_tick_seconds_and_are_utc():
    start = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    feed = SimulatedMarket(["BTC/USD", "ETH/USD"], seed=1, start=start, tick_seconds=0.25)
    for n, batch in enumerate(run(feed, 1000)):
        for q in batch:
            assert q.ts == start + timedelta(seconds=0.25 * n)
            assert q.ts.utcoffset() == timedelta(0)


def test_regimes_change_over_a_long_run():
    feed = SimulatedMarket(SYMS, seed=3, start=START, tick_seconds=60)
    seen: set[str] = set()
    changes = 0
    prev = {s: feed.regime(s) for s in SYMS}
    for _ in range(5000):  # ~3.5 simulated days
        feed.next_batch()
        for s in SYMS:
            r = feed.regime(s)
            assert r in REGIMES
            seen.add(r)
            changes += r != prev[s]
            prev[s] = r
    assert seen == set(REGIMES)
    assert changes >= 20


def test_trending_regimes_drift_and_volatile_regime_is_wider():
    feed = SimulatedMarket(["BTC/USD"], seed=11, start=START, tick_seconds=60,
                           spike_probability=0, gap_probability=0)  # fmt: skip
    rets: dict[str, list[float]] = {r: [] for r in REGIMES}
    spreads: dict[str, list[float]] = {r: [] for r in REGIMES}
    prev = None
    for _ in range(40000):
        (q,) = feed.next_batch()
        r = feed.regime("BTC/USD")
        mid = float(q.mid)
        if prev is not None:
            rets[r].append(math.log(mid / prev))
        spreads[r].append(float((q.ask - q.bid) / q.mid))
        prev = mid
    mean = {r: sum(v) / len(v) for r, v in rets.items()}
    assert mean["trending_up"] > 0 > mean["trending_down"]
    avg_spread = {r: sum(v) / len(v) for r, v in spreads.items()}
    assert avg_spread["volatile"] > 2 * avg_spread["calm"]
    sd = {r: math.sqrt(sum(x * x for x in v) / len(v)) for r, v in rets.items()}
    assert sd["volatile"] > 2 * sd["calm"]


def test_no_spikes_or_gaps_at_zero_probability():
    feed = SimulatedMarket(SYMS, seed=2, start=START, spike_probability=0, gap_probability=0)
    batches = run(feed, 20000)
    assert feed.spike_count == 0 and feed.gap_count == 0 and not feed.events
    for sym in SYMS:
        series = [float(q.mid) for b in batches for q in b if q.symbol == sym]
        worst = max(abs(math.log(b / a)) for a, b in zip(series, series[1:]))
        assert worst < 0.01, sym


def test_spikes_are_one_tick_outliers_that_revert():
    feed = SimulatedMarket(["ETH/USD"], seed=4, start=START, spike_probability=0.05, gap_probability=0)
    series = mids(feed, 2000, "ETH/USD")
    assert feed.spike_count > 30 and feed.gap_count == 0
    for ev in feed.events:
        assert ev.kind == "spike" and 0.03 <= abs(ev.pct) <= 0.08
        n = int((ev.ts - START).total_seconds())
        if not 0 < n < len(series) - 1:
            continue
        assert abs(series[n] / series[n - 1] - 1) > 0.025  # the outlier
        assert abs(series[n + 1] / series[n - 1] - 1) < 0.005  # back next tick


def test_gaps_are_lasting_jumps():
    feed = SimulatedMarket(["SOL/USD"], seed=4, start=START, spike_probability=0, gap_probability=0.05)
    series = mids(feed, 2000, "SOL/USD")
    assert feed.gap_count > 30 and feed.spike_count == 0
    for ev in list(feed.events)[:-1]:
        assert ev.kind == "gap" and 0.02 <= abs(ev.pct) <= 0.06
        n = int((ev.ts - START).total_seconds())
        if n == 0:
            continue
        assert abs(series[n] / series[n - 1] - 1 - ev.pct) < 0.005
        assert (series[n] > series[n - 1]) == (ev.pct > 0)
        if n + 2 < len(series) and all(e.ts != ev.ts + timedelta(seconds=1) for e in feed.events):
            assert abs(series[n + 1] / series[n] - 1) < 0.005  # stays


def test_sim_rejects_bad_arguments():
    with pytest.raises(ValueError):
        SimulatedMarket([], seed=1, start=START)
    with pytest.raises(ValueError):
        SimulatedMarket(["BTC/USD", "BTC/USD"], seed=1, start=START)
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulatedMarket(["BTC/USD"], seed=1, start=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        SimulatedMarket(["BTC/USD"], seed=1, start=START, tick_seconds=0)


def test_sim_never_exhausts_and_is_a_market_feed():
    feed = SimulatedMarket(["BTC/USD"], seed=1, start=START, tick_seconds=3600)
    assert isinstance(feed, MarketFeed)
    assert all(b is not None and len(b) == 1 for b in run(feed, 5000))


# --- CSV replay ------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def drain(feed):
    out = []
    while (b := feed.next_batch()) is not None:
        out.append(b)
    return out


def test_quotes_replay_exact_grouped_and_in_symbol_order(tmp_path):
    p = write(tmp_path, (
        "timestamp,symbol,bid,ask,bid_size,ask_size,last,volume\n"
        "2026-01-05T00:00:00Z,ETH/USD,3000.10,3000.30,1.5,2.25,3000.20,10\n"
        "2026-01-05T00:00:00Z,BTC/USD,60000.01,60000.11,0.5,0.75,60000.05,1.001\n"
        "2026-01-05T00:00:01Z,BTC/USD,60000.02,60000.12,0.5,0.75,60000.06,0\n"
        "2026-01-05T00:00:01Z,ETH/USD,3000.11,3000.31,1.5,2.25,3000.21,3\n"
        "2026-01-05T00:00:02Z,ETH/USD,3000.12,3000.32,1,2,3000.22,4\n"
    ))  # fmt: skip
    feed = CsvReplayFeed(p)
    assert isinstance(feed, MarketFeed)
    assert feed.kind == "quotes"
    assert feed.symbols == ["ETH/USD", "BTC/USD"]
    assert feed.total_batches == 3
    batches = drain(feed)
    assert [[q.symbol for q in b] for b in batches] == [["ETH/USD", "BTC/USD"], ["ETH/USD", "BTC/USD"], ["ETH/USD"]]
    t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    assert [b[0].ts for b in batches] == [t0, t0 + timedelta(seconds=1), t0 + timedelta(seconds=2)]
    btc = batches[0][1]
    assert (btc.bid, btc.ask, btc.bid_size, btc.ask_size, btc.last, btc.volume) == (
        Decimal("60000.01"), Decimal("60000.11"), Decimal("0.5"), Decimal("0.75"),
        Decimal("60000.05"), Decimal("1.001"),
    )  # fmt: skip
    assert str(btc.bid) == "60000.01"
    assert feed.next_batch() is None and feed.next_batch() is None
    assert feed.position == 3


def test_quotes_without_optional_columns(tmp_path):
    p = write(tmp_path, " Timestamp , SYMBOL ,Bid,Ask,exchange\n1767571200,X/USD,10.01,10.04,foo\n")
    feed = CsvReplayFeed(p)
    (q,) = feed.next_batch()
    assert q.ts == datetime(2026, 1, 5, tzinfo=timezone.utc)
    assert q.last == Decimal("10.025")
    assert q.bid_size == q.ask_size == q.volume == 0
    assert feed.ignored_columns == ["exchange"]


def test_bars_replay_one_quote_at_the_close(tmp_path):
    p = write(tmp_path, (
        "timestamp,symbol,open,high,low,close,volume\n"
        "2026-01-05 00:00:00,BTC/USD,60000,60100.5,59900,60050.5,12.5\n"
        "2026-01-05 00:01:00,BTC/USD,60050.5,60080,60000,60001,3\n"
    ))  # fmt: skip
    feed = CsvReplayFeed(p)
    assert feed.kind == "bars" and feed.symbols == ["BTC/USD"]
    (q1,), (q2,) = drain(feed)
    assert q1.ts == datetime(2026, 1, 5, tzinfo=timezone.utc)  # naive = UTC
    half = Decimal("60050.5") * 2 / 20000
    assert q1.bid == Decimal("60050.5") - half == Decimal("60044.49495")
    assert q1.ask == Decimal("60056.50505")
    assert q1.last == Decimal("60050.5")
    assert q1.volume == q1.bid_size == q1.ask_size == Decimal("12.5")
    assert q2.ts - q1.ts == timedelta(minutes=1)

    wide = CsvReplayFeed(p, spread_bps=Decimal(10))
    (q,) = wide.next_batch()
    assert q.ask - q.bid == Decimal("60050.5") * 10 / 10000


def test_timestamp_formats(tmp_path):
    p = write(tmp_path, (
        "timestamp,symbol,bid,ask\n"
        "1767571200,A,1,2\n"
        "2026-01-05T01:00:00+01:00,B,1,2\n"  # the same instant as the row above
        "2026-01-05T00:00:00.500000Z,A,1,2\n"
        "1767571200.75,B,1,2\n"
        "2026-01-05 00:00:01,A,1,2\n"
    ))  # fmt: skip
    batches = drain(CsvReplayFeed(p))
    t0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
    ms = timedelta(milliseconds=1)
    assert [(b[0].ts, [q.symbol for q in b]) for b in batches] == [
        (t0, ["A", "B"]), (t0 + 500 * ms, ["A"]), (t0 + 750 * ms, ["B"]), (t0 + 1000 * ms, ["A"]),
    ]  # fmt: skip
    assert all(q.ts.tzinfo is timezone.utc for b in batches for q in b)


HQ = "timestamp,symbol,bid,ask\n"
HB = "timestamp,symbol,open,high,low,close,volume\n"
T1 = "2026-01-05T00:00:00Z"
T2 = "2026-01-05T00:00:01Z"


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        pytest.param("", 1, "empty file", id="empty"),
        pytest.param("\n\n", 1, "empty file", id="blank-only"),
        pytest.param(HQ, 1, "no data rows", id="header-only"),
        pytest.param("timestamp,symbol,bid\n" + f"{T1},A,1\n", 1,
                     "missing column ask (quotes need timestamp,symbol,bid,ask); found: timestamp,symbol,bid",
                     id="missing-ask"),
        pytest.param("timestamp,symbol,open,high,low,close\n", 1,
                     "missing column volume (bars need timestamp,symbol,open,high,low,close,volume); "
                     "found: timestamp,symbol,open,high,low,close", id="missing-volume"),
        pytest.param("time,sym,price\n", 1, "missing columns: expected timestamp,symbol,bid,ask", id="no-format"),
        pytest.param("symbol,bid,ask\n", 1, "missing column timestamp", id="missing-timestamp"),
        pytest.param("timestamp,symbol,bid,ask,close\n", 1, "ambiguous header", id="ambiguous"),
        pytest.param("timestamp,symbol,bid,bid,ask\n", 1, "duplicate column 'bid'", id="dup-column"),
        pytest.param(HQ + f"{T1},A,1,2\n{T2},A,abc,2\n", 3, "bid: not a number: 'abc'", id="unparsable"),
        pytest.param(HQ + f"{T1},A,1,\n", 2, "ask: not a number: empty", id="empty-number"),
        pytest.param(HQ + f"{T1},A,1_00,101\n", 2, "bid: not a number: '1_00'", id="underscore-digits"),
        pytest.param(HQ + f"{T1},A,100,\u0661\u0660\u0662\n", 2, "ask: not a number: '\u0661\u0660\u0662'",
                     id="other-script-digits"),
        pytest.param(HQ + f"{T1},A,NaN,2\n", 2, "bid: not a finite number", id="nan"),
        pytest.param(HQ + f"{T1},A,1,inf\n", 2, "ask: not a finite number", id="inf"),
        pytest.param(HQ + f"{T1},A,0,2\n", 2, "bid must be > 0 (got 0)", id="zero-price"),
        pytest.param(HQ + f"{T1},A,-1,2\n", 2, "bid must be > 0 (got -1)", id="negative-price"),
        pytest.param(HQ + f"{T1},A,2.5,2.4\n", 2, "bid 2.5 > ask 2.4", id="crossed"),
        pytest.param("timestamp,symbol,bid,ask,volume\n" + f"{T1},A,1,2,-3\n", 2, "volume must be >= 0",
                     id="negative-volume"),
        pytest.param("timestamp,symbol,bid,ask,last\n" + f"{T1},A,1,2,0\n", 2, "last must be > 0", id="zero-last"),
        pytest.param(HB + f"{T1},A,10,11,9,10,5\n{T2},A,10,9,11,10,5\n", 3, "high 9 < low 11", id="high-low"),
        pytest.param(HB + f"{T1},A,10,11,9,12,5\n", 2, "close 12 outside low..high (9..11)", id="close-range"),
        pytest.param(HB + f"{T1},A,0,11,9,10,5\n", 2, "open must be > 0", id="bar-zero"),
        pytest.param(HQ + f"{T2},A,1,2\n{T2},B,1,2\n{T1},C,1,2\n", 4,
                     "goes backwards (line 3 has 2026-01-05T00:00:01+00:00)", id="backwards"),
        pytest.param(HQ + f"{T1},A,1,2\n{T1},B,1,2\n{T1},A,1,2\n", 4,
                     "repeated timestamp 2026-01-05T00:00:00+00:00 for A (first at line 2)", id="repeat"),
        pytest.param(HQ + f"{T1},A,1,2\n1767571200,A,1,2\n", 3, "repeated timestamp", id="repeat-other-format"),
        pytest.param(HQ + "yesterday,A,1,2\n", 2, "timestamp: not ISO-8601 or epoch seconds: 'yesterday'",
                     id="bad-timestamp"),
        pytest.param(HQ + ",A,1,2\n", 2, "timestamp: empty", id="empty-timestamp"),
        pytest.param(HQ + "1e20,A,1,2\n", 2, "timestamp out of range", id="epoch-range"),
        pytest.param(HQ + f"{T1}, ,1,2\n", 2, "symbol: empty", id="empty-symbol"),
        pytest.param(HQ + f"{T1},A,1,2,3\n", 2, "expected 4 fields", id="too-many-fields"),
        pytest.param(HQ + f"{T1},A,1\n", 2, "expected 4 fields", id="too-few-fields"),
        pytest.param(HQ + f"{T1},A,1,2\n\n{T2},A,x,2\n", 4, "bid: not a number", id="blank-lines-count"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, text, line, fragment):
    p = write(tmp_path, text)
    with pytest.raises(CsvFeedError) as info:
        CsvReplayFeed(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:{line}: "), msg
    assert fragment in msg, msg
    assert "\n" not in msg
    assert info.value.line == line


def test_csv_missing_file(tmp_path):
    p = tmp_path / "nope.csv"
    with pytest.raises(CsvFeedError, match="cannot read") as info:
        CsvReplayFeed(p)
    assert str(info.value).startswith(str(p))


def test_build_feed_sim_and_csv(tmp_path):
    sim = build_feed(FeedConfig(seed=3, tick_seconds=5), ["BTC/USD", "SOL/USD"], START)
    assert isinstance(sim, SimulatedMarket) and sim.symbols == ["BTC/USD", "SOL/USD"]
    b0, b1 = sim.next_batch(), sim.next_batch()
    assert b0[0].ts == START and b1[0].ts == START + timedelta(seconds=5)
    assert as_tuples(run(build_feed(FeedConfig(seed=3), ["BTC/USD"], START), 50)) == as_tuples(
        run(SimulatedMarket(["BTC/USD"], seed=3, start=START), 50)
    )

    p = write(tmp_path, HQ + f"{T1},ZZZ/USD,1,2\n")
    csv_feed = build_feed(FeedConfig(kind="csv", csv_path=str(p)), ["BTC/USD", "ZZZ/USD"], START)
    assert isinstance(csv_feed, CsvReplayFeed) and csv_feed.symbols == ["ZZZ/USD"]
    # A file quoting what the profile does not list would trade it: refused, naming them.
    with pytest.raises(CsvFeedError, match=r"quotes ZZZ/USD, which the profile's symbols \(BTC/USD\) do not list"):
        build_feed(FeedConfig(kind="csv", csv_path=str(p)), ["BTC/USD"], START)

    bad = write(tmp_path, HQ + f"{T1},ZZZ/USD,2,1\n", "bad.csv")
    with pytest.raises(CsvFeedError, match=r"bad\.csv:2: bid 2 > ask 1"):
        build_feed(FeedConfig(kind="csv", csv_path=str(bad)), ["BTC/USD"], START)


def test_csv_bytes_level_problems_name_the_line(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes(b"timestamp,symbol,bid,ask\n2026-01-05,A,1,2\n2026-01-06,A,\xff,2\n")
    with pytest.raises(CsvFeedError, match=r"latin1\.csv:3: not UTF-8 text"):
        CsvReplayFeed(p)
    p = tmp_path / "quote.csv"
    p.write_bytes(b'timestamp,symbol,bid,ask\n2026-01-05,A,"1,2\n')
    with pytest.raises(CsvFeedError, match=r"quote\.csv:2: malformed CSV"):
        CsvReplayFeed(p)
    p = tmp_path / "bom_crlf.csv"  # a UTF-8 BOM and CRLF line ends are fine; line numbers still count
    p.write_bytes(b"\xef\xbb\xbftimestamp,symbol,bid,ask\r\n2026-01-05,A,1,2\r\n2026-01-06,A,x,2\r\n")
    with pytest.raises(CsvFeedError, match=r"bom_crlf\.csv:3: bid: not a number: 'x'"):
        CsvReplayFeed(p)
