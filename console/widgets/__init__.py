"""The console's panes. Each renders an `EngineSnapshot` via `show(snap)` and never calls the engine."""
from .alerts import AlertPane
from .approvals import ApprovalPane
from .breakers import BreakerPane
from .capital import CapitalPane
from .header import StatusHeader
from .keybar import KeyBar
from .logtail import LogTail
from .orders import OrdersPane
from .pnl import PnlPane
from .positions import PositionsPane

__all__ = [
    "AlertPane",
    "ApprovalPane",
    "BreakerPane",
    "CapitalPane",
    "KeyBar",
    "LogTail",
    "OrdersPane",
    "PnlPane",
    "PositionsPane",
    "StatusHeader",
]
