"""The road to live money, one stage at a time: paper -> testnet -> micro -> small -> medium -> standard.

A stage is granted in the journal, by `tradeconsole promote` (console/cli_stage.py), as a `stage`
row `{from, to, direction, ...}`; the last such row is the journal's granted stage. The engine
honours it: a testnet or live profile starts only when its journal grants its stage or a higher
one (`require_granted`), so a real venue never trades on a stage nobody promoted to. A paper
profile needs no grant: paper is where the road starts.

Promotion goes up one stage at a time and only when the readiness report of the current stage
passes (engine/analytics/readiness.py: every criterion of `readiness.stages.<current>`). The
evidence can sit in another profile's journal (`--from`): the step from testnet to micro is
proven on the testnet profile's journal and granted in the live profile's. A downgrade needs no
evidence and is journaled at once; the engine takes it at its next start (a live profile whose
journal grants less than its stage refuses to start; one asking for less than its grant runs
at the lower stage, with the lower caps).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from .profile import STAGE_ORDER, Profile, journal_path

LIVE_STAGES = ("micro", "small", "medium", "standard")


class StageNotGranted(Exception):
    """A live profile asks for a stage its journal does not grant."""


class PromotionError(Exception):
    """A promotion that cannot even be considered (bad stage, wrong profile for it): exit 2."""


def rank(stage: str) -> int:
    return STAGE_ORDER.index(stage)


def granted_in(rows: Iterable[Any]) -> str | None:
    """The stage the last `stage` row grants (rows oldest first, each with `.data`)."""
    last = None
    for r in rows:
        to = (r.data or {}).get("to")
        if to in STAGE_ORDER:
            last = to
    return last


def current_stage(profile: Profile, granted: str | None) -> str | None:
    """Where a journal stands: its grant; a paper profile stands at its own stage without one;
    None for a testnet or live journal nobody promoted into yet."""
    if granted is not None:
        return granted
    return profile.stage if profile.mode == "paper" else None


async def require_granted(profile: Profile, journal: Any) -> str | None:
    """Refuse to start a testnet or live profile above its journal's grant; returns the grant."""
    row = await journal.last(["stage"])
    granted = granted_in([row]) if row is not None else None
    if profile.mode == "paper":
        return granted
    hint = f"tradeconsole promote --to {profile.stage} --profile PATH"
    if granted is None:
        before = "paper" if profile.mode == "testnet" else "testnet"
        raise StageNotGranted(
            f"stage {profile.stage}: no stage is granted in the journal of profile {profile.name!r} yet; "
            f"promote into it from your {before} profile first ({hint} --from {before.upper()}_PROFILE)")
    if rank(profile.stage) > rank(granted):
        raise StageNotGranted(
            f"stage {profile.stage}: the journal of profile {profile.name!r} grants {granted} only; "
            f"promote first when {granted}'s readiness passes ({hint})")
    return granted


@dataclass
class Plan:
    """What `promote` will do: `action` is promote | downgrade | none | refused."""

    action: str
    current: str | None
    target: str
    message: str
    report: dict[str, Any] | None = None
    failing: list[str] = field(default_factory=list)

    def row(self, evidence: Profile, evidence_journal: Path, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.current, "to": self.target, "direction": self.action,
                               "evidence_profile": evidence.name, "reason": reason}
        if self.report is not None:
            out |= {"evidence_journal": str(evidence_journal), "verdict": self.report["verdict"],
                    "passed": self.report["passed"], "total": self.report["total"]}
        return out


def _mode_for(stage: str) -> str:
    return "live" if stage in LIVE_STAGES else stage


def plan(target: Profile, target_current: str | None, to: str, evidence: Profile, evidence_current: str | None,
         evidence_data: Any, *, resamples: int = 2000, seed: int = 0, now: datetime | None = None) -> Plan:
    """Decide a stage change of `target`'s journal to `to`.

    `target_current` is where that journal stands (`current_stage`); `evidence` is the profile
    whose journal shows how the stage being left went (the target itself, or `--from`), at
    `evidence_current`, its journal read as `evidence_data` (None: it has none)."""
    if to not in STAGE_ORDER:
        raise PromotionError(f"--to: unknown stage {to!r}; stages are {', '.join(STAGE_ORDER)}")
    current = target_current if target_current is not None else evidence_current
    if current is None:
        if evidence is target or same_journal(evidence, target):
            raise PromotionError(
                f"profile {target.name!r} has no stage granted yet: promote into it --from the profile whose "
                f"journal proves the stage before {to}")
        raise PromotionError(
            f"neither {target.name!r} nor the evidence profile {evidence.name!r} has a stage granted yet: "
            f"promote {evidence.name!r} to {evidence.stage} first")
    if to == current:
        return Plan("none", current, to, f"profile {target.name!r} is already at stage {to}")
    if rank(to) < rank(current):
        after = ("a live profile on this journal will not start until it is promoted again"
                 if target.mode == "live" and to not in LIVE_STAGES
                 else f"from its next start this journal trades at {to} at most")
        return Plan("downgrade", current, to, f"downgraded {target.name!r} from {current} to {to}: {after}")
    if rank(to) != rank(current) + 1:
        return Plan("refused", current, to,
                    f"refused: one stage at a time; from {current} the next stage is {STAGE_ORDER[rank(current) + 1]}")
    if target.mode != _mode_for(to):
        raise PromotionError(f"--profile: stage {to} needs a {_mode_for(to)} profile; "
                             f"{target.name!r} is mode {target.mode}")
    if evidence_current != current:
        return Plan("refused", current, to,
                    f"refused: the evidence profile {evidence.name!r} stands at stage {evidence_current}, "
                    f"but the stage being left is {current}")
    crit = evidence.readiness.stages.get(current)
    if crit is None:
        raise PromotionError(f"readiness.stages.{current}: profile {evidence.name!r} has no readiness criteria "
                             f"for stage {current}; add them (or pass the profile of stage {current})")
    if evidence_data is None:
        return Plan("refused", current, to, f"refused: profile {evidence.name!r} has no journal yet: "
                                            f"nothing proves stage {current}")
    from .analytics.readiness import evaluate

    rep = evaluate(evidence, evidence_data, current, resamples=resamples, seed=seed, now=now)
    failing = [c["name"] for c in rep["criteria"] if not c["passed"]]
    if rep["verdict"] != "GO":
        return Plan("refused", current, to,
                    f"refused: readiness of stage {current} is NO-GO ({rep['passed']}/{rep['total']} pass; "
                    f"failing: {', '.join(failing)}); see tradeconsole readiness --stage {current}",
                    rep, failing)
    return Plan("promote", current, to, f"promoted {target.name!r} from {current} to {to} "
                                         f"(readiness of {current}: GO, {rep['passed']}/{rep['total']})", rep)


def same_journal(a: Profile, b: Profile) -> bool:
    return journal_path(a).resolve() == journal_path(b).resolve()
