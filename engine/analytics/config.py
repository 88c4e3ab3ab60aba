"""Profile section `readiness:`: the go/no-go criteria per stage, defaulting to the checklists."""
from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from ..profile_base import Strict


class StageCriteria(Strict):
    min_trades: int = Field(100, ge=0)
    min_days: float = Field(14, ge=0)
    min_return_pct: Decimal = Field(Decimal(1), description="after fees")
    min_sharpe: float = Field(1.5)
    min_profit_factor: float = Field(1.3, ge=0)
    max_drawdown_pct: Decimal = Field(Decimal(10), gt=0)
    max_fee_drag_pct: Decimal = Field(Decimal(15), ge=0)
    win_rate_min_pct: Decimal = Field(Decimal(45), ge=0, le=100)
    win_rate_max_pct: Decimal = Field(Decimal(60), ge=0, le=100)
    max_single_loss_pct: Decimal = Field(Decimal(5), gt=0, description="largest loss, % of capital")
    no_critical_incident: bool = True
    attestations: list[str] = Field(default_factory=list, description="items the operator must attest to")
    drill_max_age_days: float | None = Field(None, ge=0, description="a passing drill within this many days")


def _default_live_attestations() -> list[str]:
    return ["legal_tax_review", "capital_allocation", "runbook_read", "support_in_place"]


class ReadinessConfig(Strict):
    stages: dict[str, StageCriteria] = Field(
        default_factory=lambda: {
            "paper": StageCriteria(),
            "testnet": StageCriteria(min_trades=50, min_days=7, drill_max_age_days=7,
                                     attestations=_default_live_attestations()),
            "micro": StageCriteria(min_trades=50, min_days=14, drill_max_age_days=7,
                                   attestations=_default_live_attestations()),
        },
        description="criteria to leave each stage",
    )
    backtest_divergence_factor: Decimal = Field(Decimal("0.5"), gt=0, le=1,
                                                description="paper worse than backtest by this share is flagged")
