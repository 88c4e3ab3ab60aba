"""Every alert kind the engine publishes is in docs/alerts.md's severity table, where a trader
routes them (`routes.<kind>`): a kind missing there is one nobody knows to route or mute."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLISH = re.compile(r"""publish\(\s*[^,]+,\s*(?:"([a-z_]+)"|"([a-z_]+)"\s+if\s+[^)]*?else\s+"([a-z_]+)")""", re.S)


def published_kinds() -> set[str]:
    kinds: set[str] = set()
    for path in (ROOT / "engine").rglob("*.py"):
        for m in PUBLISH.finditer(path.read_text(encoding="utf-8")):
            kinds.update(k for k in m.groups() if k)
    return kinds


def documented_kinds() -> set[str]:
    text = (ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| `")]
    return set(re.findall(r"`([a-z_]+)`", "\n".join(table)))


def test_every_published_alert_kind_is_in_the_severity_table():
    kinds = published_kinds()
    assert {"halt", "stop_rejected", "breaker", "venue_late_order"} <= kinds  # the scan reads the code
    assert sorted(kinds - documented_kinds()) == []
