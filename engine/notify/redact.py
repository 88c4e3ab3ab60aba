"""Channel URLs are secrets: apprise URLs carry passwords, bot tokens and webhook keys, often in
the host or path (`tgram://<bot token>/<chat>`, `discord://<id>/<token>`). They come only from
environment variables, and what leaves this package (journal, log, alerts, CLI output) is either
a label (scheme and a real host name, nothing else) or text passed through a `Redactor`.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote

MASK = "***"
# A host worth showing is a host name or address; anything else in that place (a bot token, a
# webhook id, an ntfy topic) is treated as a secret.
_HOSTLIKE = re.compile(
    r"^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24})$")
_MIN_SECRET = 4  # shorter path pieces (e.g. "v1") are not worth masking in error text


class EnvProblem(Exception):
    """A channel's environment variable is missing or unusable; the message names the variable,
    never its value."""


def _parts(url: str) -> tuple[str, str, str, str, str, str]:
    """(scheme, userinfo, host, port, path, query) by hand: apprise URLs put tokens where
    urllib expects a port and would refuse to parse them."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", "", "", url, ""
    cut = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i != -1:
            cut = min(cut, i)
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    m = re.fullmatch(r"(.*?):(\d{1,5})", hostport)
    host, port = (m.group(1), m.group(2)) if m else (hostport, "")
    path, _, query = tail.partition("?")
    query = query.partition("#")[0]
    return scheme.lower(), userinfo, host, port, path, query


def label(url: str) -> str:
    """What may be shown of a channel URL: `mailto://smtp.example.com`, `tgram://***`."""
    scheme, _, host, port, _, _ = _parts(url.strip())
    if not scheme:
        return MASK
    if host and _HOSTLIKE.match(host):
        return f"{scheme}://{host}{':' + port if port else ''}"
    return f"{scheme}://{MASK}"


def secret_fragments(url: str) -> list[str]:
    """Every piece of `url` that could be a secret, in the forms it may appear in error text."""
    url = url.strip()
    scheme, userinfo, host, port, path, query = _parts(url)
    shown = {scheme, host, port, f"{host}:{port}"} if host and _HOSTLIKE.match(host) else {scheme}
    found: list[str] = [url]
    if userinfo:
        user, _, password = userinfo.partition(":")
        found += [userinfo, password]
        found += [user] if len(user) >= _MIN_SECRET else []
    if host and host not in shown:
        # A token in the host's place, e.g. a Telegram bot's "<id>:<secret>": each half too.
        found += [host, f"{host}:{port}" if port else host]
        found += [piece for piece in host.split(":") if len(piece) >= _MIN_SECRET]
    found += [seg for seg in path.split("/") if len(seg) >= _MIN_SECRET]
    found += [v for _, v in parse_qsl(query, keep_blank_values=False) if len(v) >= _MIN_SECRET]
    out: list[str] = []
    for f in found:
        for form in (f, unquote(f), quote(unquote(f), safe="")):
            if form and form not in shown and form not in out and len(form) >= 3:
                out.append(form)
    return out


class Redactor:
    """Masks every secret fragment of the given URLs in a text; longest fragments first, so a
    whole URL goes as one mask rather than as pieces."""

    def __init__(self, urls: Iterable[str]) -> None:
        frags = sorted({f for u in urls if u for f in secret_fragments(u)}, key=len, reverse=True)
        self._re = re.compile("|".join(re.escape(f) for f in frags)) if frags else None

    def __call__(self, text: str) -> str:
        if self._re is None or not text:
            return text
        return self._re.sub(MASK, text)


def resolve_url(env_name: str, environ: Mapping[str, str], where: str) -> str:
    """The URL held in `env_name`; `where` is the profile key, for the error line."""
    value = environ.get(env_name)
    if value is None:
        raise EnvProblem(f"{where}: environment variable {env_name} is not set")
    value = value.strip()
    if not value:
        raise EnvProblem(f"{where}: environment variable {env_name} is empty")
    if "://" not in value:
        raise EnvProblem(f"{where}: environment variable {env_name} does not hold an apprise URL (scheme://...)")
    return value
