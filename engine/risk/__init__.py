"""The risk engine: pre-trade checks, the gate that runs them, circuit breakers, trading states."""
from .breakers import Breaker, BreakerState
from .gate import CheckResult, Decision, OrderRequest, RiskContext, RiskGate, TradingState

__all__ = [
    "Breaker", "BreakerState", "CheckResult", "Decision", "OrderRequest", "RiskContext",
    "RiskGate", "TradingState",
]
