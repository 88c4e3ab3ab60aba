"""The road to live money, one stage at a time: paper -> testnet -> micro -> small -> medium -> standard.

A stage is granted in the journal, by `tradeconsole promote` (console/cli_stage.py), as a `stage`
row `{from, to, direction, venue, ...}`; the last such row is the journal's granted stage, and it
counts only for the venue it was earned on (`grant_for`): a journal copied to, or shared with, a
profile of another venue grants that profile nothing. The engine honours it: a testnet or live
profile starts only when its journal grants its stage or a higher one (`require_granted`), so a
real venue never trades on a stage nobody promoted to. A paper profile needs no grant: paper is
where the road starts, and a paper journal is a paper record whatever the profile's `stage:` says.

Promotion goes up one stage at a time and only when the readiness report of the current stage
passes (engine/analytics/readiness.py: every criterion of `readiness.stages.<current>`). The
evidence can sit in another profile's journal (`--from`): the step from testnet to micro is
proven on the testnet profile's journal and granted in the live profile's. The evidence must be a
record made at the stage being left: a paper profile's for paper, a testnet profile's granted
testnet for testnet, a live profile's granted X for X, the last two on the target's venue. Only
that record is measured (`record_at`): the sessions of the evidence journal that ran at the stage
(their `session` row's mode and, for testnet and live, `config.stage`) and, for testnet and live,
started after the journal's last grant of it; after a downgrade of the target, only what those
sessions journaled since the downgrade. A backtest journal proves nothing. A downgrade needs no
evidence and is journaled at once; the engine takes it at its next start (a live profile whose
journal grants less than its stage refuses to start; one asking for less than its grant runs at
the lower stage, with the lower caps).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
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
    """The stage the last `stage` row grants (rows oldest first, each with `.data`), whatever its venue."""
    last = _last_grant(rows)
    return None if last is None else last["to"]


def _last_grant(rows: Iterable[Any]) -> dict[str, Any] | None:
    last = None
    for r in rows:
        if getattr(r, "kind", "stage") != "stage":
            continue
        data = r.data or {}
        if data.get("to") in STAGE_ORDER:
            last = data
    return last


def grant_for(profile: Profile, rows: Iterable[Any]) -> tuple[str | None, str | None]:
    """(the stage the journal grants `profile`, or None; why a grant it holds does not count).

    `rows` are the journal's `stage` and `venue` rows, oldest first. A grant is earned on one venue
    and counts only there: a journal file copied to another venue's profile, or two venues'
    profiles on one journal path, must not carry a live stage across accounts. The venue rows
    record no account, so the venue is as fine as the binding goes."""
    rows = list(rows)
    last = _last_grant(rows)
    if last is None:
        return None, None
    venue = profile.venue.name
    earned = last.get("venue")
    if earned is None:
        # A grant written before grants named their venue. It is taken as earned on the venue the
        # journal has traded on, and only when every `venue` row agrees with this profile's: a
        # copy of another venue's journal carries that venue's rows and is refused. A journal that
        # never started has no venue rows; its grant is accepted, and the engine's first start
        # writes the venue row that binds it from then on (promote no longer writes unbound grants).
        seen = sorted({str((r.data or {}).get("venue") or r.ref) for r in rows
                       if getattr(r, "kind", None) == "venue"} - {venue})
        if not seen:
            return last["to"], None
        earned = seen[0]
    if earned != venue:
        return None, (f"the journal of profile {profile.name!r} ({journal_path(profile)}) holds a grant of "
                      f"stage {last['to']} earned on {earned}, not {venue}; a grant counts only on the venue it "
                      f"was earned on")
    return last["to"], None


def current_stage(profile: Profile, granted: str | None) -> str | None:
    """Where a journal stands: its grant (`grant_for`); None for a testnet or live journal nobody
    promoted into yet. A paper profile stands at paper: its journal is a paper record whatever its
    `stage:` says (that only picks the caps it rehearses), so it can never prove a later stage."""
    if profile.mode == "paper":
        return "paper"
    return granted


async def require_granted(profile: Profile, journal: Any) -> str | None:
    """Refuse to start a testnet or live profile above its journal's grant, or any profile on a
    journal granted another mode's stage; returns the grant.

    A journal is one stage's record: a paper session on a journal granted testnet or a live stage,
    or a testnet session on one granted a live stage, would journal its rows into that record.
    Both starts call this (venue_wiring.open_venue, Engine.open for paper); `record_at` leaves
    such rows out of a record besides, for a journal written before this refusal existed."""
    if profile.mode == "paper":
        row = await journal.last(["stage"])
        grant = granted_in([row]) if row is not None else None
        if grant is not None and grant != "paper":
            raise StageNotGranted(
                f"paper profile {profile.name!r}: its journal ({journal_path(profile)}) is granted {grant}, a "
                f"{_mode_for(grant)} record; a paper session must not trade on it: give the profile its own "
                f"journal.path")
        return grant
    granted, foreign = grant_for(profile, await journal.rows(kinds=["stage", "venue"]))
    hint = f"tradeconsole promote --to {profile.stage} --profile PATH"
    before = "paper" if profile.mode == "testnet" else "testnet"
    if foreign is not None:
        first = "testnet" if profile.mode == "testnet" else "micro"
        raise StageNotGranted(
            f"stage {profile.stage}: {foreign}; earn it on {profile.venue.name}: promote this profile to {first} "
            f"from your {profile.venue.name} {before} profile (tradeconsole promote --to {first} --profile PATH "
            f"--from {before.upper()}_PROFILE) and up from there")
    if granted is None:
        raise StageNotGranted(
            f"stage {profile.stage}: no stage is granted in the journal of profile {profile.name!r} yet; "
            f"promote into it from your {before} profile first ({hint} --from {before.upper()}_PROFILE)")
    if profile.mode == "testnet" and granted in LIVE_STAGES:
        raise StageNotGranted(
            f"stage {profile.stage}: the journal of profile {profile.name!r} ({journal_path(profile)}) is granted "
            f"the live stage {granted}; a testnet session must not trade on a live record: give the testnet "
            f"profile its own journal.path")
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
    venue: str | None = None  # the target's venue: the grant counts there only (`grant_for`)

    def row(self, evidence: Profile, evidence_journal: Path, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.current, "to": self.target, "direction": self.action,
                               "venue": self.venue, "evidence_profile": evidence.name, "reason": reason}
        if self.report is not None:
            out |= {"evidence_journal": str(evidence_journal), "verdict": self.report["verdict"],
                    "passed": self.report["passed"], "total": self.report["total"]}
        return out


def _mode_for(stage: str) -> str:
    return "live" if stage in LIVE_STAGES else stage


def needed(stage: str, venue: str) -> str:
    """The record that proves `stage`, in words."""
    if stage == "paper":
        return "the journal of a paper profile"
    return f"the journal of a {_mode_for(stage)} profile on {venue} granted {stage}"


def traded_at(session: dict[str, Any], stage: str) -> bool:
    """Whether the session whose `session` row data this is traded at `stage`.

    The engine writes the profile's `mode` and its whole config (so `config.stage`) into every
    session row. A paper session proves paper whatever `stage:` it rehearsed; a testnet or live
    session proves the stage it ran at: a live profile whose `stage:` is below its grant runs at
    that lower stage with its caps (`require_granted`), so its rows are that stage's record. A
    session row naming neither field was made by hand, not by the engine: it is taken at its
    word like any other journal row (the journal has no integrity protection; a forged `mode`
    would pass as well)."""
    mode = session.get("mode")
    if mode is not None and mode != _mode_for(stage):
        return False
    ran = (session.get("config") or {}).get("stage")
    return stage == "paper" or ran is None or ran == stage


def last_stage_row(rows: Iterable[Any], to: str | None = None) -> Any | None:
    """The last `stage` row (each with `.kind`, `.data`), or the last one granting `to`."""
    last = None
    for r in rows:
        if getattr(r, "kind", "stage") == "stage" and (to is None or (r.data or {}).get("to") == to):
            last = r
    return last


def record_at(data: Any, stage: str, stage_rows: Iterable[Any] = (), since: datetime | None = None) -> Any:
    """The record made at `stage` in a journal read as `data` (a JournalData), whose `stage`
    rows are `stage_rows`: the sessions that traded at `stage` (`traded_at`) and, for testnet and
    live, started after the journal's last row granting it (what ran before was another stage's
    record, even at the same stage: a grant starts the count again). `since` keeps only what those
    sessions journaled from then on (the header rows stay)."""
    from .analytics.journal_data import sessions_of

    grant = None if stage == "paper" else last_stage_row(stage_rows, stage)
    after = 0 if grant is None else grant.seq
    return sessions_of(data, lambda s: traded_at(s, stage), after_seq=after, since=since)


def _describe(profile: Profile, standing: str | None) -> str:
    if profile.mode == "paper":
        own = "" if profile.stage == "paper" else f" whatever its `stage: {profile.stage}` says"
        return f"{profile.name!r} is a paper profile, which stands at paper{own}"
    at = f"granted {standing}" if standing is not None else "granted no stage"
    return f"{profile.name!r} is a {profile.mode} profile on {profile.venue.name}, {at}"


def plan(target: Profile, target_current: str | None, to: str, evidence: Profile, evidence_current: str | None,
         evidence_data: Any, *, target_stages: Iterable[Any] = (), evidence_stages: Iterable[Any] = (),
         made_by: str | None = None, resamples: int = 2000, seed: int = 0, now: datetime | None = None) -> Plan:
    """Decide a stage change of `target`'s journal to `to`.

    `target_current` is where that journal stands (`current_stage`); `evidence` is the profile
    whose journal shows how the stage being left went (the target itself, or `--from`), at
    `evidence_current`, its journal read as `evidence_data` (None: it has none). `target_stages`
    and `evidence_stages` are the two journals' `stage` rows (with `seq` and `ts`), oldest first;
    `made_by` is the evidence journal's `made_by` meta (a backtest's says "backtest")."""
    if to not in STAGE_ORDER:
        raise PromotionError(f"--to: unknown stage {to!r}; stages are {', '.join(STAGE_ORDER)}")
    current = target_current if target_current is not None else evidence_current
    venue = target.venue.name
    if current is None:
        if evidence is target or same_journal(evidence, target):
            raise PromotionError(
                f"profile {target.name!r} has no stage granted yet: promote into it --from the profile whose "
                f"journal proves the stage before {to}")
        raise PromotionError(
            f"neither {target.name!r} nor the evidence profile {evidence.name!r} has a stage granted yet: "
            f"promote {evidence.name!r} to {evidence.stage} first")
    if to == current:
        return Plan("none", current, to, f"profile {target.name!r} is already at stage {to}", venue=venue)
    if rank(to) < rank(current):
        after = ("a live profile on this journal will not start until it is promoted again"
                 if target.mode == "live" and to not in LIVE_STAGES
                 else f"from its next start this journal trades at {to} at most")
        return Plan("downgrade", current, to, f"downgraded {target.name!r} from {current} to {to}: {after}",
                    venue=venue)
    if rank(to) != rank(current) + 1:
        why = "" if target_current is not None else (
            f": {_describe(evidence, evidence_current)}; {to} needs {needed(STAGE_ORDER[rank(to) - 1], venue)}")
        return Plan("refused", current, to,
                    f"refused: one stage at a time; from {current} the next stage is "
                    f"{STAGE_ORDER[rank(current) + 1]}{why}", venue=venue)
    if target.mode != _mode_for(to):
        raise PromotionError(f"--profile: stage {to} needs a {_mode_for(to)} profile; "
                             f"{target.name!r} is mode {target.mode}")
    # The record must have been made at the stage being left, on the venue the grant is for: a
    # paper journal (whatever its profile's stage: says) or another venue's record proves nothing
    # about trading this stage here.
    if evidence.mode != _mode_for(current) or (current != "paper" and evidence.venue.name != venue):
        raise PromotionError(f"--from: leaving stage {current} needs {needed(current, venue)}; "
                             f"{_describe(evidence, evidence_current)}")
    if evidence_current != current:
        return Plan("refused", current, to,
                    f"refused: leaving stage {current} needs {needed(current, venue)}; "
                    f"{_describe(evidence, evidence_current)}", venue=venue)
    crit = evidence.readiness.stages.get(current)
    if crit is None:
        raise PromotionError(f"readiness.stages.{current}: profile {evidence.name!r} has no readiness criteria "
                             f"for stage {current}; add them (or pass the profile of stage {current})")
    if evidence_data is None:
        return Plan("refused", current, to, f"refused: profile {evidence.name!r} has no journal yet: "
                                            f"nothing proves stage {current}", venue=venue)
    if made_by == "backtest":
        # A CSV replayed at full speed: hours of wall time become weeks of "trading" on bars
        # that were known in advance. No stage is proven by it.
        raise PromotionError(f"--from: the journal of {evidence.name!r} ({evidence_data.path}) was made by "
                             f"tradeconsole backtest; a backtest proves no stage: leaving {current} needs "
                             f"{needed(current, venue)}")
    from .analytics.journal_data import made_rows
    from .analytics.readiness import evaluate

    target_stages, evidence_stages = list(target_stages), list(evidence_stages)
    # After a downgrade of the target, going back up needs a record made after it: the record
    # that earned the lost stage was judged already, and what happened since made the operator
    # take it back. Testnet and live rows are on the wall clock, so "after" is the downgrade's
    # time. Paper rows are on a simulated market's clock, not comparable with it: a paper
    # record is taken as it is.
    down = last_stage_row(target_stages)
    since = None
    if current != "paper" and down is not None and (down.data or {}).get("direction") == "downgrade":
        since = down.ts
    record = record_at(evidence_data, current, evidence_stages, since)
    rep = evaluate(evidence, record, current, resamples=resamples, seed=seed, now=now)
    failing = [c["name"] for c in rep["criteria"] if not c["passed"]]
    if not made_rows(record):
        # Nothing was made at the stage: say why plainly, not only which numbers failed (an
        # empty record fails on trades; the criteria the operator's own acts meet may pass).
        where = f"the journal of {evidence.name!r} ({evidence_data.path})"
        if since is not None and made_rows(record_at(evidence_data, current, evidence_stages)):
            why = (f"{target.name!r} was downgraded from {down.data.get('from')} to {down.data.get('to')} at "
                   f"{since.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC and going back up needs a record made "
                   f"after that; no session traded at {current} on {where} since")
        elif current == "paper":
            why = f"no paper session traded on {where}"
        else:
            why = f"no session traded at {current} on {where} since {current} was granted there"
        return Plan("refused", current, to,
                    f"refused: readiness of stage {current} is NO-GO ({rep['passed']}/{rep['total']} pass; "
                    f"failing: {', '.join(failing) or 'none'}): {why}; leaving {current} needs a record made at "
                    f"{current}", rep, failing, venue=venue)
    if rep["verdict"] != "GO":
        return Plan("refused", current, to,
                    f"refused: readiness of stage {current} is NO-GO ({rep['passed']}/{rep['total']} pass; "
                    f"failing: {', '.join(failing)}); see tradeconsole readiness --stage {current}",
                    rep, failing, venue=venue)
    return Plan("promote", current, to, f"promoted {target.name!r} from {current} to {to} "
                                         f"(readiness of {current}: GO, {rep['passed']}/{rep['total']})", rep,
                venue=venue)


def same_journal(a: Profile, b: Profile) -> bool:
    return journal_path(a).resolve() == journal_path(b).resolve()
