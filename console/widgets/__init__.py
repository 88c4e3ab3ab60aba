"""The console's panes. Each renders an `EngineSnapshot` via `show(snap)` and never calls the engine."""
from .alerts import AlertPane
from .approvals import ApprovalPane
from .breakers import BreakerPane
from .header import StatusHeader
from .logtail import LogTail
from .pnl import PnlPane
from .positions import PositionsPane

__all__ = [
    "AlertPane",
    "ApprovalPane",
    "BreakerPane",
    "LogTail",
    "PnlPane",
    "PositionsPane",
    "StatusHeader",
]
