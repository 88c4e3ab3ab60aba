"""A profile's `keys:` remap: refused, one line per problem naming the file and `keys.<id>`, by
check-config and by run before anything opens, whenever it could leave a key (above all a halt
key) that the terminal cannot deliver or that fires while the operator types."""
from __future__ import annotations

import time

import pytest

from console.app import TradeConsoleApp
from console.bindings import keymap_problems, validate_keymap
from console.cli import main
from console.modals import NoteModal


def only(keys: dict[str, str]) -> str:
    problems = keymap_problems(keys)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize("keys, fragment", [
    # Typos and names no terminal sends: F12 and ctrl+\ would be gone with nothing in their place.
    ({"halt": "f112"}, "keys.halt: 'f112' is not a key a terminal sends"),
    ({"halt_alt": "ctrl+backslahs"}, "keys.halt_alt: 'ctrl+backslahs' is not a key a terminal sends"),
    ({"halt": "fff"}, "keys.halt: 'fff' is not a key"),
    ({"halt": "f30"}, "keys.halt: 'f30' is not a key"),
    ({"approve": "shift+a"}, "keys.approve: 'shift+a' is not a key"),  # a terminal sends 'A'
    # Keys a terminal turns into another one.
    ({"halt": "ctrl+h"}, "keys.halt: 'ctrl+h' reaches the console as 'backspace'"),
    ({"halt_alt": "ctrl+i"}, "keys.halt_alt: 'ctrl+i' reaches the console as 'tab'"),
    ({"halt": "ctrl+m"}, "keys.halt: 'ctrl+m' reaches the console as 'enter'"),
    ({"halt": "ctrl+j"}, "keys.halt: 'ctrl+j' is the same code as 'newline'"),
    ({"note": "ctrl+left_square_bracket"}, "reaches the console as 'escape'"),
    ({"note": "ctrl+space"}, "keys.note: 'ctrl+space' is the same code as 'ctrl+at'"),
    # A priority halt key the operator types into a text field.
    ({"halt": "z"}, "keys.halt: 'z' types a character: halt fires first, even while typing"),
    ({"halt_alt": "question_mark"}, "keys.halt_alt: 'question_mark' types a character"),
    ({"halt": "space"}, "keys.halt: 'space' types a character"),
    ({"halt": "ctrl+d"}, "keys.halt: 'ctrl+d' edits text fields (delete_right)"),
    # Textual's own priority key, and the two halt keys made one.
    ({"halt": "ctrl+q"}, "keys.halt: 'ctrl+q' is Textual's own key (quit)"),
    ({"halt": "ctrl+backslash"}, "keys.halt: 'ctrl+backslash' is already bound to 'halt_alt'"),
    ({"halt": "f11", "halt_alt": "f11"}, "keys.halt_alt: 'f11' is already bound to 'halt'"),
])
def test_a_key_the_terminal_cannot_deliver_is_refused(keys, fragment):
    assert fragment in only(keys)
    with pytest.raises(ValueError, match="keys."):
        validate_keymap(keys)


def test_every_problem_is_one_line_and_good_remaps_pass():
    assert keymap_problems({"halt": "fff", "halt_alt": "ggg", "hallt": "f11"}) == [
        "keys.hallt: no such binding id; known ids: " + ", ".join(__import__("console.bindings").bindings.BINDING_IDS),
        "keys.halt: 'fff' is not a key a terminal sends (Textual knows no such key; e.g. 'f11', 'ctrl+x', 'y')",
        "keys.halt_alt: 'ggg' is not a key a terminal sends (Textual knows no such key; e.g. 'f11', 'ctrl+x', 'y')",
    ]
    good = {"halt": "f11", "halt_alt": "ctrl+f12", "approve": "y,A", "log_search": "/", "note": "alt+n",
            "history": "ctrl+f5", "help": "?"}
    assert keymap_problems(good) == []
    assert validate_keymap(good)["log_search"] == "slash"
    # A printable key stays fine for a key that is not a priority one.
    assert keymap_problems({"approve": "z"}) == []


BAD = "keys:\n  halt: ctrl+h\n  halt_alt: fff\n"


def test_check_config_reports_the_key_map_run_would_refuse(tmp_path, capsys):
    prof = tmp_path / "keys.yaml"
    prof.write_text(BAD)
    assert main(["check-config", str(prof)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [
        f"{prof}: keys.halt: 'ctrl+h' reaches the console as 'backspace' (a terminal sends both as one code)",
        f"{prof}: keys.halt_alt: 'fff' is not a key a terminal sends (Textual knows no such key; e.g. 'f11', "
        "'ctrl+x', 'y')",
    ]


def test_run_refuses_a_bad_key_map_before_the_engine_or_journal_opens(tmp_path, capsys, monkeypatch):
    from engine.engine import Engine

    async def never(*args, **kwargs):
        raise AssertionError("the engine was opened with a key map run refuses")

    monkeypatch.setattr(Engine, "open", never)
    journal = tmp_path / "j.sqlite"
    prof = tmp_path / "keys.yaml"
    prof.write_text(BAD + f"journal:\n  path: {journal}\n")
    assert main(["run", "--profile", str(prof)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prof}: keys.halt: 'ctrl+h'") and "Traceback" not in err
    assert len(err.splitlines()) == 2 and not journal.exists()


async def test_remapped_halt_keys_fire_from_a_text_field_and_typing_never_halts(make_profile, open_engine):
    engine = await open_engine(make_profile(keys={"halt": "f11", "halt_alt": "alt+h"}), seed=3)
    app = TradeConsoleApp(engine, start_engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")  # the note dialog: a text field has the focus
        deadline = time.monotonic() + 5
        while not isinstance(app.screen, NoteModal):
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        await pilot.press(*"typing zhlq h")
        await pilot.pause()
        assert engine.snapshot().trading_state == "active"
        await pilot.press("alt+h")
        assert engine.state.value == "halted"
