"""The engine's operator actions (engine/operator.py) and the snapshot additions the console shows,
against a real engine: paper broker, seeded simulated market, SimClock.

The strategy is silenced here (its signals would open and close positions under the test's feet);
every order below is the operator's, through the same gate, queue and order manager."""
from __future__ import annotations

from decimal import Decimal as D

from conftest import ANY_READINESS, LOOSE_RISK, run_until
from engine.models import OrderPurpose, Side
from engine.operator import ManualOrderSpec
from engine.risk.checks import default_checks
from engine.risk.checks_operator import PauseBook, SymbolPausedCheck
from engine.profile import Profile
from engine.risk.gate import OrderRequest, RiskContext, TradingState


async def quiet(make_profile, open_engine, approval: bool = False, seed: int = 5, **sections):
    profile = make_profile(approval={"required": approval, "timeout_seconds": 86400},
                           risk={**LOOSE_RISK, **ANY_READINESS, **sections.pop("risk", {})}, **sections)
    eng = await open_engine(profile, seed=seed)
    eng.strategy.on_quote = lambda q, pos: None  # the operator's orders only
    await eng.run(duration=30)
    return eng


async def rows(eng, kind, **kw):
    return await eng.journal.rows(kinds=[kind], **kw)


async def open_long(eng, symbol="BTC/USD", risk="20"):
    assert await eng.submit_manual(ManualOrderSpec(symbol, "buy", risk_usd=D(risk))) is None
    await run_until(eng, lambda: symbol in eng.portfolio.positions and eng.orders.stop_order(symbol), step=2)
    return eng.portfolio.positions[symbol]


# -- what-if and manual orders ------------------------------------------------------------------
async def test_what_if_runs_the_whole_gate_and_sends_nothing(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine)
    before = await eng.journal.count()
    spec = ManualOrderSpec("BTC/USD", "buy", risk_usd=D("25"))
    p = eng.preview(spec)
    assert p.approved and p.refusal is None
    assert {c.name for c in p.decision.checks} >= {"trading_state", "symbol_paused", "stop_loss", "position_size"}
    # sized over the stop distance like a strategy order: risk $25 at the default 8 % stop
    assert p.stop_price == (p.price * D("0.92")).quantize(D("0.00000001"))
    assert abs(p.loss_at_stop - D(25)) < D("0.1") and p.quantity * p.price == p.notional
    assert eng.what_if(spec).approved
    assert await eng.journal.count() == before and not eng.orders.working  # nothing sent or journaled

    too_big = eng.what_if(ManualOrderSpec("BTC/USD", "buy", quantity=D(1)))  # within the book, past the cap
    assert not too_big.approved and too_big.failed == "position_size"
    assert "cap" in too_big.failure.detail
    assert eng.what_if(ManualOrderSpec("DOGE/USD", "buy")).failed == "order_spec"
    assert "limit price" in eng.preview(ManualOrderSpec("BTC/USD", "buy", type="limit")).problem
    assert "not both" in eng.preview(ManualOrderSpec("BTC/USD", "buy", quantity=D(1), risk_usd=D(1))).problem
    wrong = eng.what_if(ManualOrderSpec("ETH/USD", "buy", quantity=D("0.01"), stop_price=D(999999)))
    assert wrong.failed == "stop_loss" and "WRONG SIDE" in wrong.failure.detail
    eng.halt("test", "halted for the test")
    assert eng.what_if(spec).failed == "trading_state"


async def test_manual_order_waits_for_approval_then_fills_with_its_stop(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine, approval=True)
    assert await eng.submit_manual(ManualOrderSpec("ETH/USD", "buy", risk_usd=D(20), note="breakout")) is None
    (pending,) = eng.snapshot().approvals
    assert pending.symbol == "ETH/USD" and pending.reason == "operator: breakout" and pending.checks
    (dec,) = await rows(eng, "decision", ref=pending.client_order_id)
    assert dec.data["source"] == "operator" and dec.data["approved"] is True
    (op,) = await rows(eng, "operator", ref=pending.client_order_id)
    assert op.data["action"] == "submit_manual" and op.data["queued"] is True
    # one entry per symbol in flight, as for the strategy
    assert "already waiting" in eng.preview(ManualOrderSpec("ETH/USD", "buy")).problem
    assert await eng.approve(pending.client_order_id)
    await run_until(eng, lambda: eng.orders.stop_order("ETH/USD") is not None, step=2)
    pos = eng.portfolio.positions["ETH/USD"]
    assert pos.stop_price == pending.stop_price and eng.orders.stop_order("ETH/USD").stop_price == pos.stop_price
    assert eng.preview(ManualOrderSpec("ETH/USD", "buy", risk_usd=D(5))).problem is None  # adding is allowed
    assert "close it" in eng.preview(ManualOrderSpec("ETH/USD", "sell")).problem


async def test_refused_manual_order_is_journaled_with_its_reason(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine)
    refusal = await eng.submit_manual(ManualOrderSpec("BTC/USD", "buy", quantity=D(1)))  # within the book
    assert refusal is not None and "position_size" in refusal
    (op,) = await rows(eng, "operator")
    assert op.data["result"] == "refused" and "position_size" in op.data["refusal"]
    (dec,) = await rows(eng, "decision", ref=op.ref)
    assert dec.data["approved"] is False and dec.data["source"] == "operator"
    assert not eng.orders.working
    problem = await eng.submit_manual(ManualOrderSpec("BTC/USD", "hold"))
    assert "side" in problem and len(await rows(eng, "operator")) == 2


# -- per position / per order -------------------------------------------------------------------
async def test_close_position_exits_and_lifts_the_stop(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine)
    await open_long(eng, "SOL/USD")
    assert await eng.close_position("ETH/USD") == "no open position in ETH/USD"
    assert await eng.close_position("SOL/USD") is None
    await run_until(eng, lambda: "SOL/USD" not in eng.portfolio.positions, step=2)
    assert not [o for o in eng.orders.working.values() if o.symbol == "SOL/USD"]  # no stop left behind
    ops = [r.data["action"] for r in await rows(eng, "operator")]
    assert ops == ["submit_manual", "close_position", "close_position"]


async def test_cancel_order_takes_entries_and_refuses_a_lone_stop(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine, orders={"limit_timeout_seconds": 7200})
    pos = await open_long(eng, "BTC/USD")
    stop = eng.orders.stop_order("BTC/USD")
    refusal = await eng.cancel_order(stop.client_order_id)
    assert "protective stop" in refusal and stop.client_order_id in eng.orders.working
    bid = eng.quotes["ETH/USD"].bid
    resting = ManualOrderSpec("ETH/USD", "buy", risk_usd=D(10), type="limit", limit_price=bid * D("0.99"))
    assert await eng.submit_manual(resting) is None
    (entry,) = [o for o in eng.orders.working.values() if o.purpose is OrderPurpose.ENTRY]
    assert await eng.cancel_order(entry.client_order_id) is None
    assert entry.client_order_id not in eng.orders.working
    assert "not a working order" in await eng.cancel_order("nope")
    assert pos.quantity > 0 and eng.orders.stop_order("BTC/USD") is stop


async def test_tighten_stop_moves_closer_refuses_loosening_past_the_max(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine)
    pos = await open_long(eng, "BTC/USD")
    old_stop = eng.orders.stop_order("BTC/USD")
    tighter = (pos.stop_price + pos.last_price) / 2
    assert await eng.tighten_stop("BTC/USD", tighter) is None
    await eng.orders.process_events()
    placed = eng.orders.stop_order("BTC/USD")
    assert placed.stop_price == tighter == pos.stop_price and placed is not old_stop
    assert old_stop.client_order_id not in eng.orders.working  # replaced, never two, never none
    # looser again, but within the profile's 15 % of the average price: allowed
    within = (pos.avg_price * D("0.88")).quantize(D("0.01"))
    assert await eng.tighten_stop("BTC/USD", within) is None and pos.stop_price == within
    beyond = (pos.avg_price * D("0.80")).quantize(D("0.01"))
    refusal = await eng.tighten_stop("BTC/USD", beyond)
    assert "stop_loss_max_pct" in refusal and pos.stop_price == within
    assert "wrong side" in await eng.tighten_stop("BTC/USD", pos.last_price * 2)
    assert eng.orders.stop_order("BTC/USD").stop_price == within
    results = [(r.data["result"], r.data["new"]) for r in await rows(eng, "operator", ref="BTC/USD")]
    assert [r for r, _ in results] == ["done", "done", "refused", "refused"]


# -- pauses -------------------------------------------------------------------------------------
def test_symbol_paused_check_blocks_entries_only():
    book = PauseBook()
    check = SymbolPausedCheck(book)
    assert any(isinstance(c, SymbolPausedCheck) for c in default_checks(Profile()))
    req = OrderRequest("BTC/USD", Side.BUY, D(1), D(100), D(90), OrderPurpose.ENTRY, "strategy", strategy="ema_trend")
    ctx = RiskContext(now=None, trading_state=TradingState.ACTIVE, equity=D(1), cash=D(1), day_start_equity=D(1),
                      pnl_today=D(0), open_positions=0, position_qty=D(0), gross_exposure=D(0), trades_today=0,
                      trades_last_hour=0, seconds_since_last_trade=None)
    assert check.evaluate(req, ctx).passed
    book.pause("BTC/USD", "news")
    res = check.evaluate(req, ctx)
    assert not res.passed and "news" in res.detail
    assert OrderPurpose.EXIT not in check.applies_to and OrderPurpose.STOP not in check.applies_to
    book.resume("BTC/USD")
    book.pause(PauseBook.key(strategy="ema_trend"), "review")
    assert not check.evaluate(req, ctx).passed
    req.strategy = "operator"
    assert check.evaluate(req, ctx).passed
    book.pause(PauseBook.key(), "all")
    assert not check.evaluate(req, ctx).passed


async def test_pause_refuses_entries_exits_still_work_and_survives_a_restart(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine)
    await open_long(eng, "BTC/USD")
    assert await eng.pause("BTC/USD", reason="news at 15:00") is None
    assert eng.what_if(ManualOrderSpec("BTC/USD", "buy", quantity=D("0.001"))).failed == "symbol_paused"
    assert eng.what_if(ManualOrderSpec("ETH/USD", "buy", risk_usd=D(10))).approved
    assert [p.key for p in eng.snapshot().paused] == ["BTC/USD"]
    assert await eng.pause(strategy="ema_trend") is None
    assert eng.what_if(ManualOrderSpec("ETH/USD", "buy", risk_usd=D(10))).approved  # operator orders pass
    assert await eng.close_position("BTC/USD") is None  # exits are never paused
    await run_until(eng, lambda: "BTC/USD" not in eng.portfolio.positions, step=2)
    assert await eng.pause() is None  # everything
    assert eng.what_if(ManualOrderSpec("ETH/USD", "buy", risk_usd=D(10))).failed == "symbol_paused"
    assert await eng.resume() is None and await eng.resume(strategy="ema_trend") is None
    assert await eng.resume("ETH/USD") == "ETH/USD was not paused"
    assert "not a traded symbol" in await eng.pause("XRP/USD")
    profile = eng.profile
    await eng.close()
    again = await open_engine(profile, seed=5)
    assert await again.restore_operator_state() == 1
    assert [p.key for p in again.snapshot().paused] == ["BTC/USD"]


# -- notes, alerts ------------------------------------------------------------------------------
async def test_notes_are_journaled_and_shown_in_trade_history(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine)
    await open_long(eng, "ETH/USD")
    assert await eng.add_note("took the breakout by hand", ref="ETH/USD", kind="trade") is None
    assert await eng.add_note("quiet day") is None
    assert "kind" in await eng.add_note("x", kind="weekly")
    assert "text" in await eng.add_note("   ")
    notes = await rows(eng, "note")
    assert [(n.ref, n.data["kind"], n.data["text"]) for n in notes] == [
        ("ETH/USD", "trade", "took the breakout by hand"), (None, "day", "quiet day")]
    history = await eng.trade_history()
    assert [n.text for n in history.notes] == ["quiet day", "took the breakout by hand"]
    assert history.total_fills >= 1 and history.fills[0].symbol == "ETH/USD"
    assert history.fills[0].purpose in ("entry", "stop") and history.fills[0].price > 0


async def test_critical_alerts_stay_until_acknowledged(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine)
    now = eng.clock.now()
    crit = eng.alerts.publish("critical", "stop_refused", "BTC/USD: protective stop refused", now)
    for n in range(80):  # buries it far below the feed's 50
        eng.alerts.publish("info", "noise", f"noise {n}", now)
    await eng.journal.flush()
    shown = eng.snapshot().alerts
    assert any(a.seq == crit.seq and not a.acknowledged for a in shown)
    assert len([a for a in shown if a.kind == "noise"]) == 50
    assert await eng.acknowledge_alert(crit.seq) is None
    assert all(a.seq != crit.seq for a in eng.snapshot().alerts)  # acknowledged, then it ages out
    (ack,) = await rows(eng, "operator", ref=str(crit.seq))
    assert ack.data["action"] == "acknowledge_alert" and ack.data["kind"] == "stop_refused"
    assert "no alert" in await eng.acknowledge_alert(10_000)


# -- snapshot additions -------------------------------------------------------------------------
async def test_snapshot_carries_risk_meter_capital_and_performance(make_profile, open_engine):
    eng = await quiet(make_profile, open_engine, stage="micro",
                      stages={"micro": {"max_capital_usd": 5000, "max_position_usd": 1000}})
    await open_long(eng, "BTC/USD", risk="5")
    s = eng.snapshot()
    (p,) = s.positions
    pos = eng.portfolio.positions["BTC/USD"]
    fees = (pos.avg_price + pos.stop_price) * pos.quantity * D("0.002")
    assert p.loss_at_stop == (pos.avg_price - pos.stop_price) * pos.quantity + fees
    assert p.loss_limit == min(eng.portfolio.equity / 100 + fees, D(200))
    assert p.exposure == pos.market_value and p.exposure_cap == eng.portfolio.equity / 10
    assert s.capital.deployed == eng.portfolio.gross_exposure and s.capital.cap == D(5000)
    assert s.capital.reserve_min == eng.portfolio.equity * D("0.25")
    for net in (D(30), D(-10), D(20), D(-10)):  # the screen counts every trade: the totals, not the tail
        eng.portfolio.totals.add(net)
    perf = eng.snapshot().performance
    assert (perf.trades, perf.wins, perf.losses) == (4, 2, 2)
    assert perf.win_rate_pct == 50 and perf.profit_factor == D("2.5") and perf.net == D(30)
    assert {t.name: t.passed for t in perf.targets} == {
        "trades": False, "win_rate": True, "profit_factor": True, "max_drawdown": True}
    assert s.stage == "micro" and len(s.drawdown_curve) == len(s.equity_curve)


async def test_pnl_since_stage_start_spans_sessions(make_profile, open_engine):
    profile = make_profile(risk=LOOSE_RISK)
    first = await open_engine(profile, seed=2)
    assert first.snapshot().pnl_since_stage_start is None  # until the journal has been read
    await first.run(duration=1800)
    await first.load_stage_history()
    st = first.operator_state
    assert first.snapshot().pnl_since_stage_start == first.portfolio.equity - st.session_start_equity
    await first.close()
    second = await open_engine(profile, seed=2)
    await second.load_stage_history()
    all_rows = await second.journal.rows(kinds=["session", "equity", "session_end"])
    starts = [i for i, r in enumerate(all_rows) if r.kind == "session"]
    eq = [D(r.data["equity"]) for r in all_rows[starts[0] + 1:starts[1]]]
    assert len(eq) >= 2 and second.operator_state.stage_pnl_before == eq[-1] - eq[0]
    assert second.snapshot().stage_started.isoformat() == all_rows[starts[0]].ts
    # a session at another stage starts the count again
    other = await open_engine(profile.model_copy(update={"stage": "testnet"}), seed=2)
    await other.load_stage_history()
    assert other.operator_state.stage_pnl_before == 0
