"""What every platform parser shares: the error it raises, the page results it
returns, and the defensive readers of loosely typed platform JSON.

A payload is either parsed whole, or rejected whole with a ``ParseError`` whose
``reason`` is a short stable code (it becomes the crawl stat
``parse/dropped/<reason>``). List payloads are more forgiving: one bad entry is
reported in ``drops`` and the good ones are still returned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

from crawler.items import EpisodeItem, WebtoonItem

# (reason, detail) for each entry a list parser could not use.
Drop = tuple[str, str]


class ParseError(ValueError):
    """A payload (or one entry of it) the parser cannot turn into items.

    ``reason`` is one of ``bad_json``, ``missing_field:<name>``,
    ``wrong_type:<name>``, ``unknown_shape``; ``detail`` is for the log.
    """

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class TitleRef:
    """A title as a list page shows it: enough to ask for its details."""

    external_id: str
    days: list[str] = field(default_factory=list)  # DayOfWeek values seen for it
    card: dict[str, Any] = field(default_factory=dict)  # the list entry, JSON-able


@dataclass
class TitleListPage:
    titles: list[TitleRef] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    page: int = 1
    total_pages: int = 1
    is_last: bool = True
    end_cursor: str | None = None


@dataclass
class EpisodePage:
    items: list[EpisodeItem] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    page: int = 1
    total_pages: int = 1
    total_count: int | None = None
    is_last: bool = True
    end_cursor: str | None = None


def load_json(payload: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """The payload as a JSON object; ``bad_json`` / ``unknown_shape`` otherwise."""
    if isinstance(payload, Mapping):
        return dict(payload)
    try:
        data = json.loads(payload)
    except (ValueError, TypeError) as exc:
        raise ParseError("bad_json", str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise ParseError("unknown_shape", f"top level is {type(data).__name__}, not an object")
    return data


def obj(data: Mapping[str, Any], name: str, *, required: bool = True) -> dict[str, Any]:
    """A nested object; an absent optional one reads as ``{}``."""
    value = data.get(name)
    if value is None:
        if required:
            raise ParseError(f"missing_field:{name}")
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"wrong_type:{name}", f"expected object, got {type(value).__name__}")
    return value


def array(data: Mapping[str, Any], name: str, *, required: bool = False) -> list[Any]:
    """A nested list; an absent optional one reads as ``[]``."""
    value = data.get(name)
    if value is None:
        if required:
            raise ParseError(f"missing_field:{name}")
        return []
    if not isinstance(value, list):
        raise ParseError(f"wrong_type:{name}", f"expected list, got {type(value).__name__}")
    return value


def text(data: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    """A string field, stripped; numbers are accepted as their text."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ParseError(f"missing_field:{name}")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ParseError(f"wrong_type:{name}", f"expected string, got {type(value).__name__}")
    return str(value).strip()


def identifier(data: Mapping[str, Any], name: str) -> str:
    """A required platform id (int or string of digits/letters), as a string."""
    value = data.get(name)
    if value is None or value == "":
        raise ParseError(f"missing_field:{name}")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(f"wrong_type:{name}", f"expected id, got {type(value).__name__}")
    result = str(value).strip()
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", result):
        raise ParseError(f"wrong_type:{name}", f"not an id: {result[:50]!r}")
    return result


def integer(data: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    """An int that platforms send as a number or a string of digits ("52" or 52)."""
    value = data.get(name)
    if value is None or value == "":
        if default is None:
            raise ParseError(f"missing_field:{name}")
        return default
    if isinstance(value, bool):
        raise ParseError(f"wrong_type:{name}", "expected integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise ParseError(f"wrong_type:{name}", f"expected integer, got {value!r:.50}")


def number(data: Mapping[str, Any], name: str) -> float | None:
    """An optional figure (count, score); unusable values read as absent."""
    value = data.get(name)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


def flag(data: Mapping[str, Any], name: str) -> bool:
    """A boolean that may arrive as true/"true"/1/"Y"."""
    value = data.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "y", "yes", "1")
    return bool(value)


def iso_date(value: Any) -> str | None:
    """An ISO date (YYYY-MM-DD) from an ISO datetime/date string; None if unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    try:
        # The platforms send local (KST) datetimes: keep their calendar date.
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    try:
        return date.fromisoformat(raw[:10]).isoformat()
    except ValueError:
        return None


def dotted_date(value: Any) -> str | None:
    """The Korean sites' short "YY.MM.DD" as an ISO date; other text (e.g. "3일 후 무료")
    is None."""
    raw = value if isinstance(value, str) else ""
    match = re.fullmatch(r"\s*(\d{2})\.(\d{2})\.(\d{2})\s*", raw)
    if not match:
        return None
    year, month, day = (int(part) for part in match.groups())
    try:
        return date(2000 + year, month, day).isoformat()
    except ValueError:
        return None


def stats_of(**figures: float | None) -> dict[str, float]:
    """Only the figures the platform actually gave."""
    return {name: value for name, value in figures.items() if value is not None}


def unique(values: Iterable[str]) -> list[str]:
    """Values in first-seen order without repeats or blanks."""
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return list(seen)


def split_names(value: str) -> list[str]:
    """Author names joined with "/", "," or "&" in one string."""
    return unique(part.strip() for part in re.split(r"[/,&]", value or ""))


def author(platform: str, name: str, role: str, artist_id: str | None = None) -> dict[str, str]:
    """An ``AuthorRef`` as a dict; the uid falls back to the name when there is no id."""
    uid = f"{platform}:{artist_id}" if artist_id else f"{platform}:name:{name}"
    return {"uid": uid, "name": name, "role": role}


def merge_roles(roles: set[str]) -> str:
    """One AuthorRole for the roles one person holds on a title."""
    if ("WRITER" in roles and "ARTIST" in roles) or "BOTH" in roles:
        return "BOTH"
    for role in ("WRITER", "ARTIST", "ORIGINAL"):
        if role in roles:
            return role
    return "WRITER"


def with_image_extension(url: str | None, extension: str = ".png") -> str | None:
    """Kakao serves images at extension-less URLs; the CDN answers ``URL.png``."""
    if not url:
        return None
    path = url.split("?", 1)[0]
    last = path.rsplit("/", 1)[-1]
    if "." in last:
        return url
    return url + extension


def entry_drop(exc: ParseError, where: str) -> Drop:
    return (exc.reason, f"{where}: {exc.detail}" if exc.detail else where)


__all__ = [
    "Drop",
    "EpisodeItem",
    "EpisodePage",
    "ParseError",
    "TitleListPage",
    "TitleRef",
    "WebtoonItem",
]


def id_from_argument(value: str, id_in_url: Callable[[SplitResult], str | None],
                     what: str, id_name: str, example_url: str) -> str:
    """A platform id from a spider argument: the id itself, or an http(s) URL holding it
    (``id_in_url`` finds it in the split URL, or returns None)."""
    candidate = (value or "").strip()
    if re.fullmatch(r"\d+", candidate):
        return candidate
    parts = urlsplit(candidate)
    found = id_in_url(parts) if parts.scheme in ("http", "https") else None
    if found and re.fullmatch(r"\d+", found):
        return found
    raise ValueError(
        f"{what} {value!r}: expected a numeric {id_name} or a URL like {example_url}")
