"""The suite-wide secret scan (tests/conftest.py) fails a run whose output holds a test key."""
from __future__ import annotations

from pathlib import Path

pytest_plugins = ("pytester",)

CONFTEST = Path(__file__).with_name("conftest.py")


def _run(pytester, body: str):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_leaky=body)
    return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")


def test_a_key_in_a_written_file_fails_the_run_without_printing_it(pytester):
    result = _run(pytester, 'SECRET = "scanSECRET-0123456789"\n'
                            'def test_writes(tmp_path):\n'
                            '    (tmp_path / "journal.log").write_text("oops " + SECRET)\n')
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 1
    assert "secret scan" in out and "test_leaky.SECRET" in out and "journal.log" in out
    assert "scanSECRET-0123456789" not in out


def test_a_key_in_captured_output_fails_the_run(pytester):
    result = _run(pytester, 'KEY = "scanKEY-0123456789abc"\n'
                            'def test_prints():\n'
                            '    print("key", KEY)\n'
                            '    assert False\n')
    out = result.stdout.str()
    assert result.ret == 1 and "test_leaky.KEY in the output of" in out


def test_a_clean_run_passes(pytester):
    result = _run(pytester, 'KEY = "scanKEY-0123456789abc"\n'
                            'def test_quiet(tmp_path):\n'
                            '    (tmp_path / "journal.log").write_text("nothing to see")\n'
                            '    (tmp_path / "profile.yaml").write_text("key: " + KEY)\n')
    assert result.ret == 0
