"""Load a YAML profile into a `Profile`, or explain in one line per problem what is wrong."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .profile import Profile
from .venue_config import KEY_SHAPED, looks_like_key


# YAML is imported on first use: the console's default start (the built-in profile) reads no file,
# and the import is a measurable share of that start on a small machine.
@functools.cache
def _unique_key_loader() -> type:
    import yaml

    class _UniqueKeyLoader(yaml.SafeLoader):
        """A repeated key is an error: with plain YAML the last one silently wins, and a limit set
        twice is a limit someone thinks is set to the other value."""

    def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                # YAML allows `? [a, b]` as a key; no setting is named that way, and as a dict
                # key it cannot even be looked up (unhashable).
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain string, not a list or mapping", key_node.start_mark)
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return loader.construct_mapping(node, deep=deep)

    _UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    return _UniqueKeyLoader


class ConfigError(Exception):
    """One or more problems in a profile; `lines` are ready to print, one per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


_SECRET_WORDS = ("key", "secret", "token", "password", "passphrase")


def _may_hold_secret(path: tuple) -> bool:
    """A field that names where a secret lives (`*_env`, anything under `venue.keys`): a wrong
    value there is most likely the secret itself, pasted in place of its variable's name. The
    top-level `keys` section is the console's key map: nothing secret there."""
    if path and path[0] == "keys":
        return False
    return any(str(p).lower().endswith("_env") or any(w in str(p).lower() for w in _SECRET_WORDS) for p in path)


def _key_shaped_env(data: Any, path: tuple = ()) -> list[str]:
    """Paths of `*_env` values shaped like a key. The venue keys refuse them in their own model;
    this covers every other variable-name field (alert and heartbeat URLs), which a key-shaped
    value passes, and which check-config would then print back in the effective profile."""
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            here = (*path, k)
            if isinstance(v, str) and str(k).lower().endswith("_env") and looks_like_key(v):
                found.append(".".join(str(p) for p in here))
            else:
                found.extend(_key_shaped_env(v, here))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found.extend(_key_shaped_env(v, (*path, i)))
    return found


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if kind == "key_shaped":  # the model's own words, which never quote the value
        return loc, err["msg"]
    if kind not in ("cross_field", "extra_forbidden", "missing") and _may_hold_secret(err["loc"]):
        # Never echo the value: it may be a live key or a token-bearing URL.
        if str(err["loc"][-1]).lower().endswith("_env"):
            return loc, ("must be the NAME of an environment variable (capitals, digits, _), "
                         "not its value: the value stays in the environment")
        msg = err["msg"]
        return loc, f"{msg[0].lower()}{msg[1:]} (the value is not shown: it may be a secret)"
    if kind == "cross_field":
        # raised by a model validator: the field rides in the context
        field = f"{loc}.{ctx['field']}" if loc else ctx["field"]
        return field, str(ctx["msg"])
    if kind == "extra_forbidden":
        last = str(err["loc"][-1]).lower() if err["loc"] else ""
        if any(w in last for w in _SECRET_WORDS):
            # Never echo the value: it may be a live key.
            return loc, "secrets never go in a profile: put them in environment variables (see venue.keys)"
        return loc, "unknown key (check the spelling; unknown keys are refused so no limit is lost)"
    if kind == "missing":
        return loc, "required"
    bounds = {
        "greater_than_equal": ">=",
        "greater_than": ">",
        "less_than_equal": "<=",
        "less_than": "<",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return loc, f"must be {bounds[kind]} {limit} (got {got})"
    if kind == "finite_number":
        return loc, f"must be a finite number (got {got})"
    if kind == "literal_error":
        return loc, f"must be one of {ctx.get('expected')} (got {got!r})"
    if kind == "too_short":
        return loc, f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return loc, f"at most {ctx.get('max_length')} item(s)"
    if kind == "string_pattern_mismatch":
        return loc, f"must match {ctx.get('pattern')} (got {got!r})"
    msg = err["msg"]
    return loc, f"{msg[0].lower()}{msg[1:]} (got {got!r})" if got is not None and not isinstance(got, dict) else msg


def validation_lines(source: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc, message = _describe(err)
        lines.append(f"{source}: {loc}: {message}" if loc else f"{source}: {message}")
    return lines


def profile_from_mapping(data: Any, source: str = "<profile>") -> Profile:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping of settings at the top level (got {type(data).__name__})"])
    shaped = [f"{source}: {loc}: {KEY_SHAPED}" for loc in _key_shaped_env(data)]
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(list(dict.fromkeys(validation_lines(source, exc) + shaped))) from None
    if shaped:
        raise ConfigError(shaped)
    return profile


def load_profile(path: str | Path | None) -> Profile:
    """No path: the built-in conservative paper profile on the simulated market."""
    if path is None:
        return Profile()
    p = Path(path)
    source = str(path)
    if not source.strip():
        raise ConfigError(["the profile path is empty: expected the path of a YAML profile file"])
    if p.exists() and not p.is_file() and not p.is_dir():
        # /dev/zero or a pipe: read to the end, it never ends (or waits for a writer).
        raise ConfigError([f"{source}: not a regular file (a device or a pipe): expected a YAML profile file"])
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{source}: no such file"]) from None
    except UnicodeDecodeError as exc:
        # Where, so an editor can find the stray byte (often a pasted curly quote in Latin-1).
        line = p.read_bytes()[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{source}: line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                           "save the profile as UTF-8"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{source}: is a directory, not a profile file"]) from None
    except OSError as exc:  # permissions, an unreadable device: the OS says why
        raise ConfigError([f"{source}: cannot read ({exc.strerror or exc.__class__.__name__})"]) from None
    import yaml

    try:
        data = yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([f"{source}: {_yaml_problem(exc)}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: YAML error: {exc}"]) from None
    if data is None:
        # Named on the command line, an empty file is a mistake (a wrong or half-written copy),
        # not a wish for the built-in profile: that would trade on the default paper journal.
        raise ConfigError([f"{source}: the file is empty: expected a mapping of settings"])
    profile = profile_from_mapping(data, source)
    # Files a profile names sit beside the profile, wherever it is started from: a journal taken
    # from the current directory was a fresh empty one (no halt latch, no positions) whenever
    # the same profile was started from another folder.
    folder = p.parent
    profile.feed.csv_path = _beside(folder, profile.feed.csv_path)
    profile.journal.path = _beside(folder, profile.journal.path)
    profile.logging.path = _beside(folder, profile.logging.path)
    profile.control.socket_path = _beside(folder, profile.control.socket_path)
    shared = shared_files(profile)
    if shared:
        raise ConfigError([f"{source}: {line}" for line in shared])
    return profile


def _beside(folder: Path, value: str | None) -> str | None:
    if not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (folder / path).resolve())


_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def _files(profile: Profile) -> list[tuple[str, str, Path]]:
    """Every file a run writes, as (the profile field it comes from, what it is, its path)."""
    from .control.paths import lock_path, socket_path
    from .profile import journal_path, log_path, paper_store_path

    def sqlite(field: str, what: str, path: Path) -> list[tuple[str, str, Path]]:
        return [(field, what, path), *((field, f"{what}'s {s} file", Path(f"{path}{s}")) for s in _SQLITE_SIDECARS)]

    jpath = journal_path(profile)
    files = sqlite("journal.path", "the journal", jpath)
    if profile.venue.name == "paper":
        files += sqlite("journal.path", "the paper venue's store", paper_store_path(jpath))
    files.append(("journal.path", "the instance lock", lock_path(profile)))
    lpath = log_path(profile)
    log = "the log file" if profile.logging.path else "the log file (by default journal.path with .log)"
    files.append(("logging.path", log, lpath))
    files += [("logging.path", f"the log's rotated backup {lpath.name}.{i}", Path(f"{lpath}.{i}"))
              for i in range(1, profile.logging.backups + 1)]
    if profile.control.socket:
        files.append(("control.socket_path", "the control socket", socket_path(profile)))
    return files


def shared_files(profile: Profile) -> list[str]:
    """Two of a run's files that would be one file, one line per pair of fields: a log written
    into the journal, its rotation renaming the live journal away, a lock truncating it."""
    seen: list[tuple[str, str, Path, tuple[int, int] | None]] = []
    lines: dict[tuple[str, str], str] = {}
    for field, what, path in _files(profile):
        real = path.expanduser().resolve()
        try:
            st = real.stat()
            inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            inode = None
        for o_field, o_what, o_real, o_inode in seen:
            if o_field != field and (o_real == real or (inode is not None and inode == o_inode)):
                lines.setdefault((field, o_field), (
                    f"{field}: {what} would be the same file as {o_what} ({o_field}): {real}; "
                    "give each its own path"))
        seen.append((field, what, real, inode))
    return list(lines.values())


def _yaml_problem(exc: Any) -> str:
    """Where and what, for one YAML error. A syntax error is noticed past the mistake (a key's
    missing ':' on the next line, an unclosed quote or bracket at the end of the file): the line
    to fix is where the scanner began what it could not finish (its context mark), so that one is
    named first, with where it was noticed."""
    import yaml

    # A constructor error is well-formed YAML the loader refuses (a repeated key, a list as a key):
    # its problem mark is the offending key itself.
    constructor = isinstance(exc, yaml.constructor.ConstructorError)
    problem = exc.problem or exc.context or "invalid YAML"
    mark, noticed = exc.problem_mark or exc.context_mark, ""
    if not constructor and exc.context_mark is not None and exc.problem_mark is not None \
            and exc.context_mark.line < exc.problem_mark.line:
        mark = exc.context_mark
        noticed = f" ({exc.context}; noticed at line {exc.problem_mark.line + 1})"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{where}{'YAML error' if constructor else 'YAML syntax error'}: {problem}{noticed}"


def preflight(profile: Profile, source: str | None = None) -> list[str]:
    """What a run would refuse at its start that the schema cannot see, one line per problem: a
    replay file that is missing or malformed, an exchange calendar that does not exist. Checked
    with the code the run uses, so check-config cannot call valid a profile that run refuses."""
    problems = []
    if profile.feed.kind == "csv" and profile.feed.csv_path:
        from datetime import datetime, timezone

        from .feeds import CsvFeedError, build_feed

        try:
            build_feed(profile.feed, profile.symbols, datetime.now(timezone.utc))
        except CsvFeedError as exc:
            problems.append(f"feed.csv_path: {exc}")
    if profile.venue.name != "paper" and profile.venue.base_url:
        # The host a testnet or live profile may talk to (engine/brokers/endpoints.py): the same
        # refusal `run` makes before it reads a key.
        from .brokers.endpoints import endpoint_refusal

        why = endpoint_refusal(profile.venue.name, profile.venue.base_url, profile.mode)
        if why:
            problems.append(why)
    if profile.market_hours.calendar != "24/7":  # the calendar package costs most of a second: only when named
        from .risk.hours import CalendarError, ExchangeSessions

        try:
            ExchangeSessions(profile.market_hours.calendar)
        except CalendarError as exc:
            problems.append(str(exc))
    return [f"{source}: {p}" if source else p for p in problems]


def effective_yaml(profile: Profile) -> str:
    import yaml

    from .control.paths import socket_path
    from .profile import journal_path, log_path

    text = yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False)
    # The files a run opens, defaults included: which journal (halt latch, positions) a profile
    # means is the question a check should answer. Comments, so the output still loads as a profile.
    files = [("journal", journal_path(profile)), ("log file", log_path(profile))]
    if profile.control.socket:
        files.append(("control socket", socket_path(profile)))
    return text + "".join(f"# {what}: {path.absolute()}\n" for what, path in files)
