"""Top bar: who/where/when, and the trading state loud enough to see from across the room."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from engine.snapshot import EngineSnapshot

from ._format import clock, money

# Paper is the everyday case and stays calm; anything touching a real venue must be impossible
# to mistake for paper at a glance.
MODE_STYLE = {
    "paper": "bold black on green",
    "testnet": "bold black on yellow",
    "live": "bold bright_white on red",
}


class StatusHeader(Vertical):
    DEFAULT_CSS = """
    StatusHeader { height: 2; dock: top; }
    StatusHeader > Static { height: 1; width: 1fr; padding: 0 1; }
    StatusHeader #hdr-info { background: $panel; }
    StatusHeader.-mode-testnet #hdr-info { background: $warning 35%; }
    /* Live is red whatever the theme: a named ANSI red survives 16- and 256-colour terminals. */
    StatusHeader.-mode-live #hdr-info { background: ansi_red; color: ansi_bright_white; text-style: bold; }
    StatusHeader #hdr-state { background: $success 20%; color: $text; }
    StatusHeader #hdr-state.-halted { background: $error; color: white; text-style: bold; }
    StatusHeader #hdr-state.-restricted { background: $warning; color: black; text-style: bold; }
    """

    # The app sets this from the effective keymap so the hint never names a key that was remapped.
    rearm_key: str = "R"
    quit_key: str = "q"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # Held directly, not queried: the app may paint before this container's children mount.
        self.info = Static("starting…", id="hdr-info")
        self.state = Static("", id="hdr-state")

    def compose(self) -> ComposeResult:
        yield self.info
        yield self.state

    def show(self, snap: EngineSnapshot) -> None:
        for mode in MODE_STYLE:
            self.set_class(snap.mode == mode, f"-mode-{mode}")
        # Mode, equity and the connection always fit; what has a free length (the profile's name,
        # the venue notice) is cut with an ellipsis to the room left, then the clock goes.
        mode = f" {snap.mode.upper()} " if snap.mode != "live" else " LIVE · REAL MONEY "
        # Right after the venue: an emulator or a proxy must never pass for the venue itself (cut,
        # its ⚠ stays in sight).
        name = Text(snap.profile, style="bold")
        venue = Text.assemble(("@", "dim"), snap.venue)
        if snap.venue_notice:
            venue.append(f" ⚠ {snap.venue_notice}", style="bold yellow")
        tail = Text.assemble(
            ("equity ", "dim"),
            (money(snap.equity), "bold"),
            "  ",
            ("○ not running", "bold yellow") if snap.run_finished else
            ("● connected", "green") if snap.connected else ("○ DISCONNECTED", "bold red"),
        )
        stamp = Text("  " + clock(snap.ts))
        head = Text(mode, style=MODE_STYLE.get(snap.mode, "bold white on red"))
        width = self.info.content_region.width or 10_000  # not laid out yet: nothing to cut
        room = width - head.cell_len - tail.cell_len - 4  # the two gaps around `where`
        if name.cell_len + venue.cell_len > room - stamp.cell_len:
            stamp = Text()  # the clock goes before any of the profile's name or the notice
        room -= stamp.cell_len
        if name.cell_len + venue.cell_len > room:
            # The name is cut first (to a few letters at least), then the venue and notice.
            name.truncate(max(room - venue.cell_len, 6), overflow="ellipsis")
        where = Text.assemble(name, venue)
        where.truncate(max(room, 1), overflow="ellipsis")
        info = Text.assemble(head, "  ", where, "  ", tail, stamp, no_wrap=True, overflow="ellipsis")
        # One line each, always: no layout pass for a text change (the clock changes every tick).
        self.info.update(info, layout=False)
        state = self.state
        # Halted is the latch (red); any other non-active state (e.g. reduce_only) restricts trading
        # and is shown amber, never as calm as ACTIVE.
        halted = snap.trading_state in ("halted", "halting")
        state.set_class(halted, "-halted")
        state.set_class(snap.trading_state not in ("active", "halted", "halting") or bool(snap.run_finished),
                        "-restricted")
        # The short parts that decide what the operator may do come first and the free-text
        # reason last, so a narrow terminal cuts the reason and never the state, the re-arm key
        # or the pauses (at 80 columns a long halt reason pushed those off the line).
        if snap.run_finished:
            # Nothing runs: never ACTIVE, whatever the latch says (the halt's reason still shows).
            label = Text(f"■ STOPPED ({snap.run_finished}; {self.quit_key} quits)", no_wrap=True, overflow="ellipsis")
        elif snap.trading_state != "active":
            # The re-arm key only where a re-arm lifts something (the engine says): reduce-only
            # held by a day's loss or by reconciliation is not offered a key that would refuse.
            hint = f" ({self.rearm_key} re-arms)" if snap.rearm_lifts else ""
            label = Text(f"■ {snap.trading_state.upper().replace('_', ' ')}{hint}", no_wrap=True, overflow="ellipsis")
        else:
            label = Text("▶ ACTIVE", style="bold green", no_wrap=True, overflow="ellipsis")
        if snap.paused:
            label.append("  paused: ", style="bold yellow")
            label.append(", ".join(p.label for p in snap.paused), style="yellow")
        if not snap.approval_required:
            label.append("  auto-send (no approval)", style="dim")
        if snap.trading_state != "active":
            label.append(f"  — {snap.halt_reason or 'no reason recorded'}")
        state.update(label, layout=False)

    @property
    def info_text(self) -> str:
        return str(self.info.content)

    @property
    def state_text(self) -> str:
        return str(self.state.content)
