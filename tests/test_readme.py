"""The README is part of the product: its config reference and commands must match the code."""
from pathlib import Path

from engine.config_reference import rows

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_profile_key_is_in_the_config_reference():
    missing = [key for key, *_ in rows() if f"`{key}`" not in README]
    assert not missing, f"README config reference lacks: {missing} (regenerate: python -m engine.config_reference)"


def test_ci_runs_the_readme_install_and_test_commands():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -e '.[dev]'" in README and "pip install --quiet -e '.[dev]'" in ci
    assert "python -m pytest -q" in README and "python -m pytest -q" in ci


def test_every_binding_id_is_documented():
    from console.bindings import BINDING_IDS

    ids = list(BINDING_IDS)
    assert ids and all(f"`{i}`" in README for i in ids), ids


def test_every_run_option_is_documented():
    import argparse

    from console.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    run = sub.choices["run"]
    options = [s for action in run._actions for s in action.option_strings if s.startswith("--") and s != "--help"]
    assert {"--no-mouse", "--theme", "--live"} <= set(options)
    missing = [o for o in options if o not in README]
    assert not missing, f"README's commands section lacks: {missing}"
