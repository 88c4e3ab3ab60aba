"""The parts of outbound alerts that need no engine: the `alerts:` schema, URL redaction,
routing, coalescing, rate limiting, queue shedding, and the `tradeconsole alerts test` command
(delivering for real to receivers on 127.0.0.1)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from console.cli import main
from engine.config_loader import ConfigError, profile_from_mapping
from engine.models import Alert
from engine.notify.config import AlertsConfig
from engine.notify.redact import Redactor, label
from engine.notify.routing import BoundedQueue, Coalescer, Message, Router, TokenBucket
from test_notify_support import FakeWall, http_receiver, smtp_receiver  # noqa: F401 - fixtures

# apprise imports a module Python 3.13 drops; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def problems(alerts: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        profile_from_mapping({"alerts": alerts}, "p.yaml")
    return exc.value.lines


# -- schema -------------------------------------------------------------------------------------
def test_schema_refuses_what_would_silently_misroute():
    ch = {"url_env": "TC_A"}
    assert problems({"channels": {"a": ch}, "routes": {"halt": {"add": ["b"]}}}) == [
        "p.yaml: alerts.routes.halt: names unknown channel 'b'"]
    assert problems({"channels": {"a": ch}, "routes": {"halt": {"add": ["a"], "mute": ["a"]}}}) == [
        "p.yaml: alerts.routes.halt: channel 'a' is both added and muted"]
    assert problems({"channels": {"a": ch, "b": {"url_env": "TC_A"}}}) == [
        "p.yaml: alerts.channels.b.url_env: TC_A is already used by channel 'a'"]
    # A URL pasted where its variable's name goes: refused, and never echoed (it holds the token).
    assert problems({"channels": {"a": {"url_env": "json://host/token"}}}) == [
        "p.yaml: alerts.channels.a.url_env: must be the NAME of an environment variable (capitals, digits, _), "
        "not its value: the value stays in the environment"]
    assert problems({"channels": {"a": {"url_env": "TC_A", "severities": ["urgent"]}}})[0].startswith(
        "p.yaml: alerts.channels.a.severities.0: must be one of")
    assert problems({"channels": {"a": {"url_env": "TC_A", "colour": "red"}}}) == [
        "p.yaml: alerts.channels.a.colour: unknown key (check the spelling; unknown keys are refused so no limit is lost)"]
    assert problems({"routes": {"Halt!": {}}})[0] == (
        "p.yaml: alerts.routes.Halt!: event kinds are lower-case letters, digits and '_' (e.g. breaker)")
    assert problems({"heartbeat": {"url_env": "TC_BEAT", "interval_seconds": 1}}) == [
        "p.yaml: alerts.heartbeat.interval_seconds: must be >= 5.0 (got 1)"]


def test_every_alerts_field_is_described():
    from engine.notify.config import ChannelConfig, HeartbeatConfig, RouteRule

    for model in (AlertsConfig, ChannelConfig, RouteRule, HeartbeatConfig):
        for name, f in model.model_fields.items():
            if name != "heartbeat":
                assert f.description, f"{model.__name__}.{name} has no description"


# -- redaction ----------------------------------------------------------------------------------
@pytest.mark.parametrize("url, shown, secrets", [
    ("json://ops:S3cretPW@127.0.0.1:8080/hook/T0KENsecret42", "json://127.0.0.1:8080", ["S3cretPW", "T0KENsecret42"]),
    ("mailto://bob:pw99x@smtp.example.com?to=ops@example.com", "mailto://smtp.example.com", ["pw99x", "ops@example.com"]),
    ("tgram://123456789:AAEabcdefTOKEN/-100987654", "tgram://***", ["123456789:AAEabcdefTOKEN", "AAEabcdefTOKEN"]),
    ("discord://112233445566/ZZwebhookTOKENyy", "discord://***", ["112233445566", "ZZwebhookTOKENyy"]),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7F/#alerts", "slack://***", ["TIiajkdnlazkcOXrIdevi7F"]),
    ("pover://userkey1@apptoken9", "pover://***", ["userkey1", "apptoken9"]),
    ("ntfys://ntfy.sh/my-private-topic", "ntfys://ntfy.sh", ["my-private-topic"]),
])
def test_labels_show_scheme_and_host_only_and_errors_lose_every_secret(url, shown, secrets):
    assert label(url) == shown
    redact = Redactor([url])
    text = f"failed posting to {url} (token {secrets[-1]}; user part {secrets[0]})"
    out = redact(text)
    assert all(s not in out for s in secrets), out
    assert "failed posting to ***" in out


# -- routing, coalescing, pacing ----------------------------------------------------------------
def test_router_by_severity_then_kind_rules_and_never_back_to_a_failing_channel():
    cfg = AlertsConfig.model_validate({
        "channels": {"mail": {"url_env": "A", "severities": ["warning", "critical"]},
                     "phone": {"url_env": "B", "severities": ["critical"]},
                     "log": {"url_env": "C", "severities": ["info", "warning", "critical"]}},
        "routes": {"daily_summary": {"add": ["mail"]}, "breaker": {"mute": ["phone"]}}})
    r = Router(cfg, ["mail", "phone", "log"])
    assert r.recipients("info", "gate_refused") == ["log"]
    assert r.recipients("info", "daily_summary") == ["log", "mail"]
    assert r.recipients("critical", "breaker") == ["mail", "log"]
    assert r.recipients("critical", "halt") == ["mail", "phone", "log"]
    assert r.recipients("warning", "delivery_failed", exclude="mail") == ["log"]
    assert Router(cfg, ["mail"]).recipients("critical", "halt") == ["mail"]  # others left out at start


def test_coalescer_counts_repeats_in_engine_time():
    c = Coalescer(60)
    a = [Alert("warning", "stale", "no quotes", T0 + timedelta(seconds=i), seq=i) for i in range(5)]
    assert [c.offer(x) for x in a] == [True, False, False, False, False]
    assert c.offer(Alert("critical", "stale", "no quotes", T0)) is True  # severity is part of the key
    assert c.due(T0 + timedelta(seconds=59)) == []
    [m] = c.due(T0 + timedelta(seconds=60))
    assert (m.severity, m.kind, m.text, m.seqs) == ("warning", "stale", "no quotes (x5)", (0,))
    assert c.offer(Alert("warning", "stale", "no quotes", T0 + timedelta(seconds=61))) is True
    assert Coalescer(0).offer(a[0]) and Coalescer(0).offer(a[0])  # 0 s: no coalescing


def test_token_bucket_allows_a_burst_then_refills_evenly():
    wall = FakeWall()
    b = TokenBucket(2, wall)
    assert [b.take(), b.take(), b.take()] == [True, True, False]
    assert b.wait_time() == pytest.approx(30)
    wall.t += 30
    assert b.take() and not b.take()


def test_full_queue_sheds_oldest_info_first():
    q = BoundedQueue(3)
    for sev, text in (("info", "i1"), ("critical", "c1"), ("info", "i2"), ("warning", "w1"), ("critical", "c2")):
        q.put(Message(sev, "k", text, T0))
    assert [m.text for m in q.take(10)] == ["c1", "w1", "c2"] and q.dropped == 2
    for text in ("c1", "c2", "c3", "c4"):
        q.put(Message("critical", "k", text, T0))
    assert [m.text for m in q.take(10)] == ["c2", "c3", "c4"]


# -- tradeconsole alerts test -------------------------------------------------------------------
def write_profile(tmp: Path, alerts: dict) -> str:
    path = tmp / "alerts.yaml"
    path.write_text(yaml.safe_dump({"name": "desk", "alerts": alerts}, sort_keys=False))
    return str(path)


def test_cli_sends_each_severity_to_its_channels_and_prints_one_line_each(
        tmp_path, monkeypatch, capsys, http_receiver, smtp_receiver):
    rx = http_receiver()
    monkeypatch.setenv("TC_T_HOOK", rx.url())
    monkeypatch.setenv("TC_T_MAIL", smtp_receiver.url())
    path = write_profile(tmp_path, {"channels": {
        "hook": {"url_env": "TC_T_HOOK", "severities": ["info", "warning", "critical"]},
        "mail": {"url_env": "TC_T_MAIL", "severities": ["critical"], "rate_limit_per_minute": 600}}})
    assert main(["alerts", "test", "--profile", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split() for ln in lines] == [
        ["hook", f"json://127.0.0.1:{rx.port}", "info", "ok"],
        ["hook", f"json://127.0.0.1:{rx.port}", "warning", "ok"],
        ["hook", f"json://127.0.0.1:{rx.port}", "critical", "ok"],
        ["mail", f"mailto://127.0.0.1:{smtp_receiver.port}", "critical", "ok"]]
    assert [r["body"]["type"] for r in rx.received] == ["info", "warning", "failure"]
    assert rx.titles()[2] == "tradeconsole desk: TEST CRITICAL"
    assert smtp_receiver.subjects() == ["tradeconsole desk: TEST CRITICAL"]


def test_cli_reports_a_failed_channel_and_exits_1(tmp_path, monkeypatch, capsys, http_receiver):
    ok, bad = http_receiver(), http_receiver()
    bad.mode = "fail"
    monkeypatch.setenv("TC_T_OK", ok.url())
    monkeypatch.setenv("TC_T_BAD", bad.url(auth="ops:S3cretPW"))
    path = write_profile(tmp_path, {"channels": {"ok": {"url_env": "TC_T_OK"}, "bad": {"url_env": "TC_T_BAD"}}})
    assert main(["alerts", "test", "--profile", path]) == 1
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0].split() == ["ok", f"json://127.0.0.1:{ok.port}", "critical", "ok"]
    assert lines[1].startswith(f"bad json://127.0.0.1:{bad.port} critical failed: ")
    assert "500" in lines[1]
    assert "S3cretPW" not in out.out + out.err and "T0KENsecret42" not in out.out + out.err


def test_cli_config_errors_exit_2_naming_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TC_T_GONE", raising=False)
    path = write_profile(tmp_path, {"channels": {"gone": {"url_env": "TC_T_GONE"}}})
    assert main(["alerts", "test", "--profile", path]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "tradeconsole: alerts.channels.gone.url_env: environment variable TC_T_GONE is not set"]
    monkeypatch.setenv("TC_T_GONE", "nosuchscheme://host/S3cretPW")
    assert main(["alerts", "test", "--profile", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradeconsole: alerts.channels.gone.url_env: TC_T_GONE: not a URL apprise can load")
    assert "S3cretPW" not in err
    assert main(["alerts", "test", "--profile", write_profile(tmp_path, {})]) == 2
    assert "no channels configured" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # the profile loader's own exit, as for `run`
        main(["alerts", "test", "--profile", str(tmp_path / "missing.yaml")])
    assert exc.value.code == 2
