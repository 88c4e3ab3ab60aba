"""The config reference table in the README, generated from the schema so it cannot drift.

`python -m engine.config_reference` prints it; a test checks the README carries every key."""
from __future__ import annotations


from pydantic import BaseModel

from .profile import Profile

_SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "min_length": "at least", "max_length": "at most", "pattern": "matches"}


def _type_name(ann: object) -> str:
    text = str(ann)
    for junk in ("typing.", "decimal.", "<class '", "'>", "engine.profile."):
        text = text.replace(junk, "")
    return text.replace("NoneType", "None")


def rows(model: type[BaseModel] = Profile, prefix: str = "") -> list[tuple[str, str, str, str]]:
    out = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        key = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(rows(ann, key + "."))
            continue
        default = f.get_default(call_default_factory=True)
        if isinstance(default, dict) and default and isinstance(next(iter(default.values())), BaseModel):
            default = "see below" if key == "stages" else default
        bounds = []
        for m in f.metadata:
            for attr, sym in _SYMBOLS.items():
                v = getattr(m, attr, None)
                if v is not None:
                    bounds.append(f"{sym} {v}")
        typ = _type_name(ann) + (f" ({', '.join(bounds)})" if bounds else "")
        out.append((key, str(default), typ, f.description or ""))
    return out


def markdown() -> str:
    lines = ["| key | default | type | meaning |", "|---|---|---|---|"]
    for key, default, typ, desc in rows():
        cell = typ.replace("|", "\\|")
        lines.append(f"| `{key}` | `{default}` | {cell} | {desc} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(markdown())
