"""Items into the MariaDB catalogue (the original system's tables), in batches.

A title item resolves to a webtoon row through its platform link
(platform, external_id), else through ``identity_key`` (normalised title +
author names), else it *inserts* one; a known row on a new platform is *linked*
(one webtoon, two webtoon_platform rows). The platform that first brought a
title owns its columns and its author/genre/tag/day sets: items from other
platforms only maintain their own link, so two platforms never overwrite each
other back and forth. A row whose values are already equal is *unchanged*:
nothing is written, so ``updated_at`` stays put on a re-crawl.

An episode needs its title's row: until a title item has been written (maybe
by another node still buffering it, or by a node that died and whose request comes
back), the episode is *pending* and comes back with later batches, keeping its lease;
it is dropped as ``unknown_webtoon`` only when nothing left in the run can bring the
title (``crawler.pipelines.batching``, ``crawler.cluster.node``). Episodes are keyed
by (webtoon, season, episode_no) with one link per platform; each batch refreshes
``webtoon.last_update_date`` (latest ``published_at``) and
``webtoon_statistics.episode_count`` of the titles it touched.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import pymysql
from scrapy.crawler import Crawler

from crawler.items import EpisodeItem, WebtoonItem
from crawler.pipelines.batching import BatchingPipeline, Outcome, Pending, Stored
from shared.catalogue import identity_key, normalize_title
from shared.domain import GenreType, ViewerType
from shared.stores.mariadb import connect

_WEBTOON_COLUMNS = (
    "title", "normalized_title", "identity_key", "day_of_week", "status", "age_rating",
    "thumbnail_url", "thumbnail_path", "summary", "publish_start_date",
)
_EPISODE_COLUMNS = ("title", "pricing_type", "published_at", "thumbnail_url")


def _to_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()


log = logging.getLogger(__name__)

# MariaDB's "duplicate entry" error, and how often a batch is written again after one.
_ER_DUP_ENTRY = 1062
_DUPLICATE_RETRIES = 3


def _day_set(value: Any) -> frozenset[str]:
    """A SET column as PyMySQL returns it (a set, or a comma-joined string)."""
    if isinstance(value, set | frozenset):
        return frozenset(v for v in value if v)
    return frozenset(v for v in (value or "").split(",") if v)


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def thumbnail_path(images_store: str | None, images: Iterable[dict[str, Any]]) -> str | None:
    """Where ImagesPipeline put the first image: the store URI joined with its path."""
    for image in images or ():
        path = image.get("path") if isinstance(image, dict) else None
        if path:
            return f"{images_store.rstrip('/')}/{path}" if images_store else path
    return None


class CatalogueWriter:
    """Batched, idempotent catalogue writes over one pymysql connection (not autocommit).

    Each ``write*`` call is one transaction and returns one outcome per item:
    ``Stored("webtoon/inserted|linked|updated|unchanged")``,
    ``Stored("episode/inserted|linked|updated|unchanged")`` or
    ``Pending("unknown_webtoon")``.
    """

    def __init__(self, conn: pymysql.connections.Connection, images_store: str | None = None):
        self.conn = conn
        self.images_store = images_store
        self._platform_ids: dict[str, int] = {}
        # Other nodes insert the same genres, tags, authors, seasons and episodes at the
        # same time. Under InnoDB's default REPEATABLE READ, the SELECT after an
        # INSERT IGNORE that hit another node's fresh row still reads this transaction's
        # older snapshot and misses it (seen as a KeyError and a lost title in a two-node
        # crawl). READ COMMITTED makes every statement read the latest committed rows.
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")

    def write_webtoons(self, items: Sequence[WebtoonItem]) -> list[Outcome]:
        return self.write(items)

    def write_episodes(self, items: Sequence[EpisodeItem]) -> list[Outcome]:
        return self.write(items)

    def write(self, items: Sequence[Any]) -> list[Outcome]:
        """Titles first, then episodes (so a batch holding both resolves its own episodes).

        Another node may insert the same new webtoon (a title on two platforms) between
        this transaction's look-up and its insert: the unique key refuses the second
        row, and the batch is written again, finding the other node's row this time.
        """
        for attempt in range(1, _DUPLICATE_RETRIES + 1):
            try:
                return self._write_once(items)
            except pymysql.err.IntegrityError as exc:
                if exc.args[0] != _ER_DUP_ENTRY or attempt == _DUPLICATE_RETRIES:
                    raise
                log.info("catalogue: %s; writing the batch again", exc.args[1])
        raise AssertionError("unreachable")

    def _write_once(self, items: Sequence[Any]) -> list[Outcome]:
        for item in items:
            if not isinstance(item, WebtoonItem | EpisodeItem):
                raise TypeError(f"the catalogue takes WebtoonItem/EpisodeItem, got {type(item)}")
        outcomes: list[Outcome | None] = [None] * len(items)
        webtoons = [(i, it) for i, it in enumerate(items) if isinstance(it, WebtoonItem)]
        episodes = [(i, it) for i, it in enumerate(items) if isinstance(it, EpisodeItem)]
        try:
            with self.conn.cursor() as cur:
                self._load_platforms(cur)
                if webtoons:
                    results = self._write_webtoons(cur, [it for _, it in webtoons])
                    for (index, _), outcome in zip(webtoons, results, strict=True):
                        outcomes[index] = outcome
                if episodes:
                    results = self._write_episodes(cur, [it for _, it in episodes])
                    for (index, _), outcome in zip(episodes, results, strict=True):
                        outcomes[index] = outcome
            self.conn.commit()
        except BaseException:
            try:
                self.conn.rollback()
            except pymysql.err.Error:
                pass  # the connection is gone; the caller reconnects
            raise
        return outcomes  # type: ignore[return-value]

    # --- shared look-ups -------------------------------------------------------------
    def _load_platforms(self, cur) -> None:
        if not self._platform_ids:
            cur.execute("SELECT name, id FROM platform")
            self._platform_ids = {name: pid for name, pid in cur.fetchall()}

    def _platform_id(self, name: str) -> int:
        try:
            return self._platform_ids[name]
        except KeyError:
            raise ValueError(f"platform {name!r} is not in the platform table") from None

    def _links(self, cur, keys: set[tuple[int, str]]) -> dict[tuple[int, str], dict]:
        """Existing webtoon_platform rows by (platform_id, external_id), with is_primary."""
        by_platform: dict[int, set[str]] = defaultdict(set)
        for platform_id, external_id in keys:
            by_platform[platform_id].add(external_id)
        found: dict[tuple[int, str], dict] = {}
        for platform_id, external_ids in by_platform.items():
            ids = sorted(external_ids)
            cur.execute(
                "SELECT wp.platform_id, wp.external_id, wp.webtoon_id, wp.link, wp.stats, "
                "wp.status, wp.publish_days, "
                "wp.id = (SELECT MIN(x.id) FROM webtoon_platform x "
                "         WHERE x.webtoon_id = wp.webtoon_id) "
                "FROM webtoon_platform wp "
                f"WHERE wp.platform_id = %s AND wp.external_id IN ({_placeholders(ids)})",
                (platform_id, *ids),
            )
            for pid, ext, wid, link, stats, status, days, primary in cur.fetchall():
                found[(pid, ext)] = {"webtoon_id": wid, "link": link, "stats": stats,
                                     "status": status, "days": _day_set(days),
                                     "primary": bool(primary), "new": False}
        return found

    def _ids_by_name(self, cur, table: str, column: str, names: set[str]) -> dict[str, int]:
        if not names:
            return {}
        values = sorted(names)
        cur.execute(f"SELECT {column}, id FROM {table} WHERE {column} IN ({_placeholders(values)})",
                    values)
        return {name: rid for name, rid in cur.fetchall()}

    def _ensure_names(self, cur, table: str, names: set[str], extra: str = "") -> dict[str, int]:
        ids = self._ids_by_name(cur, table, "name", names)
        missing = sorted(names - set(ids))
        if missing:
            cur.executemany(f"INSERT IGNORE INTO {table} (name{extra and ', ' + extra}) "
                            f"VALUES (%s{', %s' if extra else ''})",
                            [(n, GenreType.MAIN.value) if extra else (n,) for n in missing])
            ids.update(self._ids_by_name(cur, table, "name", set(missing)))
        # The collation may fold two spellings into one row: map each to that row.
        lowered = {k.casefold(): v for k, v in ids.items()}
        return {n: ids.get(n) or lowered[n.casefold()] for n in names}

    def _ensure_authors(self, cur, items: Sequence[WebtoonItem]) -> dict[str, int]:
        authors: dict[str, dict[str, str]] = {}
        for item in items:
            for author in item.authors:
                authors.setdefault(author["uid"], author)
        if not authors:
            return {}
        uids = sorted(authors)
        cur.execute(f"SELECT uid, id, name FROM author WHERE uid IN ({_placeholders(uids)})", uids)
        existing = {uid: (aid, name) for uid, aid, name in cur.fetchall()}
        new = [authors[u] for u in uids if u not in existing]
        if new:
            cur.executemany(
                "INSERT INTO author (uid, name, role) VALUES (%s, %s, %s) "
                "ON DUPLICATE KEY UPDATE name = VALUES(name)",
                [(a["uid"], a["name"], a["role"]) for a in new])
        renamed = [(authors[u]["name"], existing[u][0]) for u in uids
                   if u in existing and existing[u][1] != authors[u]["name"]]
        if renamed:
            cur.executemany("UPDATE author SET name = %s WHERE id = %s", renamed)
        if new:
            cur.execute(f"SELECT uid, id FROM author WHERE uid IN ({_placeholders(uids)})", uids)
            return {uid: aid for uid, aid in cur.fetchall()}
        return {uid: aid for uid, (aid, _) in existing.items()}

    # --- titles ------------------------------------------------------------------------
    def _webtoon_values(self, item: WebtoonItem, current: dict | None) -> dict[str, Any]:
        path = thumbnail_path(self.images_store, item.images)
        return {
            "title": item.title,
            "normalized_title": normalize_title(item.title),
            "identity_key": identity_key(item.title, [a["name"] for a in item.authors]),
            "day_of_week": item.days_of_week[0] if item.days_of_week else None,
            "status": item.status,
            "age_rating": item.age_rating,
            "thumbnail_url": item.thumbnail_url,
            # A failed or skipped download keeps the object stored earlier.
            "thumbnail_path": path or (current or {}).get("thumbnail_path"),
            "summary": item.summary,
            "publish_start_date": _to_date(item.publish_start_date),
        }

    def _webtoon_rows(self, cur, ids: set[int]) -> dict[int, dict]:
        if not ids:
            return {}
        values = sorted(ids)
        cur.execute(f"SELECT id, {', '.join(_WEBTOON_COLUMNS)} FROM webtoon "
                    f"WHERE id IN ({_placeholders(values)})", values)
        return {row[0]: dict(zip(_WEBTOON_COLUMNS, row[1:], strict=True))
                for row in cur.fetchall()}

    def _webtoon_sets(self, cur, ids: set[int]) -> dict[int, dict[str, Any]]:
        sets: dict[int, dict[str, Any]] = {
            wid: {"authors": {}, "genres": set(), "tags": set(), "days": set()} for wid in ids}
        if not ids:
            return sets
        values = sorted(ids)
        marks = _placeholders(values)
        cur.execute(f"SELECT webtoon_id, author_id, role FROM webtoon_author "
                    f"WHERE webtoon_id IN ({marks})", values)
        for wid, aid, role in cur.fetchall():
            sets[wid]["authors"][aid] = role
        cur.execute(f"SELECT webtoon_id, genre_id FROM webtoon_genre "
                    f"WHERE webtoon_id IN ({marks})", values)
        for wid, gid in cur.fetchall():
            sets[wid]["genres"].add(gid)
        cur.execute(f"SELECT webtoon_id, tag_id FROM webtoon_tag WHERE webtoon_id IN ({marks})",
                    values)
        for wid, tid in cur.fetchall():
            sets[wid]["tags"].add(tid)
        cur.execute(f"SELECT webtoon_id, day_of_week FROM webtoon_publish_day "
                    f"WHERE webtoon_id IN ({marks})", values)
        for wid, day in cur.fetchall():
            sets[wid]["days"].add(day)
        return sets

    def _write_webtoons(self, cur, items: Sequence[WebtoonItem]) -> list[Outcome]:
        keys = [(self._platform_id(it.platform), it.external_id) for it in items]
        links = self._links(cur, set(keys))
        idents = {identity_key(it.title, [a["name"] for a in it.authors]) for it in items}
        by_identity = self._ids_by_name(cur, "webtoon", "identity_key", idents)
        known_ids = {link["webtoon_id"] for link in links.values()} | set(by_identity.values())
        rows = self._webtoon_rows(cur, known_ids)
        for wid, row in rows.items():
            by_identity.setdefault(row["identity_key"], wid)
        original_sets = self._webtoon_sets(cur, known_ids)
        sets = {wid: {k: (dict(v) if isinstance(v, dict) else set(v)) for k, v in s.items()}
                for wid, s in original_sets.items()}
        author_ids = self._ensure_authors(cur, items)
        genre_ids = self._ensure_names(cur, "genre", {g for it in items for g in it.genres},
                                       extra="type")
        tag_ids = self._ensure_names(cur, "tag", {t for it in items for t in it.tags})

        dirty: set[int] = set()
        new_links: dict[tuple[int, str], dict] = {}
        changed_links: set[tuple[int, str]] = set()
        inserted_ids: list[int] = []
        outcomes: list[Outcome] = []
        for item, key in zip(items, keys, strict=True):
            link = links.get(key)
            wid = link["webtoon_id"] if link else None
            values = self._webtoon_values(item, rows.get(wid) if wid else None)
            status = "unchanged"
            if wid is None:
                wid = by_identity.get(values["identity_key"])
            if wid is None:
                cur.execute(
                    f"INSERT INTO webtoon (external_id, {', '.join(_WEBTOON_COLUMNS)}) "
                    f"VALUES (%s, {_placeholders(_WEBTOON_COLUMNS)})",
                    (item.external_id, *(values[c] for c in _WEBTOON_COLUMNS)))
                wid = cur.lastrowid
                rows[wid] = dict(values)
                by_identity[values["identity_key"]] = wid
                original_sets[wid] = {"authors": {}, "genres": set(), "tags": set(),
                                      "days": set()}
                sets[wid] = {"authors": {}, "genres": set(), "tags": set(), "days": set()}
                inserted_ids.append(wid)
                status = "inserted"
            if link is None:
                # The platform that creates the row owns it; a later platform only links.
                link = {"webtoon_id": wid, "link": item.link, "stats": None, "status": None,
                        "days": frozenset(), "primary": status == "inserted", "new": True}
                links[key] = link
                new_links[key] = link
                if status == "unchanged":
                    status = "linked"
            stats = json.dumps(item.stats, sort_keys=True) if item.stats else None
            link_state = (item.link, stats, item.status, frozenset(item.days_of_week))
            if (link["link"], link["stats"], link["status"], link["days"]) != link_state:
                link["link"], link["stats"], link["status"], link["days"] = link_state
                if not link["new"]:
                    changed_links.add(key)
                    status = "updated" if status == "unchanged" else status
            if link["primary"]:
                row = rows[wid]
                if values["identity_key"] != row["identity_key"] and \
                        by_identity.get(values["identity_key"], wid) != wid:
                    # The new title+authors already name another row: keep this row's key.
                    values["identity_key"] = row["identity_key"]
                changed = [c for c in _WEBTOON_COLUMNS if row[c] != values[c]]
                if changed:
                    row.update({c: values[c] for c in changed})
                    by_identity[row["identity_key"]] = wid
                    if status == "unchanged":
                        status = "updated"
                    if status != "inserted":
                        dirty.add(wid)
                wanted = {
                    "authors": {author_ids[a["uid"]]: a["role"] for a in item.authors},
                    "genres": {genre_ids[g] for g in item.genres},
                    "tags": {tag_ids[t] for t in item.tags},
                    "days": set(item.days_of_week),
                }
                if wanted != sets[wid]:
                    sets[wid] = wanted
                    if status == "unchanged":
                        status = "updated"
            outcomes.append(Stored(f"webtoon/{status}"))

        for wid in sorted(dirty):
            cur.execute(f"UPDATE webtoon SET {', '.join(c + ' = %s' for c in _WEBTOON_COLUMNS)} "
                        "WHERE id = %s", (*(rows[wid][c] for c in _WEBTOON_COLUMNS), wid))
        if new_links:
            cur.executemany(
                "INSERT INTO webtoon_platform (webtoon_id, platform_id, external_id, link, stats, "
                "status, publish_days) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(lk["webtoon_id"], pid, ext, lk["link"], lk["stats"], lk["status"],
                  ",".join(sorted(lk["days"]))) for (pid, ext), lk in new_links.items()])
        if changed_links:
            cur.executemany(
                "UPDATE webtoon_platform SET link = %s, stats = %s, status = %s, publish_days = %s "
                "WHERE platform_id = %s AND external_id = %s",
                [(links[k]["link"], links[k]["stats"], links[k]["status"],
                  ",".join(sorted(links[k]["days"])), *k) for k in sorted(changed_links)])
        if inserted_ids:
            cur.executemany("INSERT IGNORE INTO webtoon_statistics (webtoon_id) VALUES (%s)",
                            [(wid,) for wid in inserted_ids])
        self._replace_sets(cur, original_sets, sets)
        return outcomes

    def _replace_sets(self, cur, before: dict[int, dict], after: dict[int, dict]) -> None:
        inserts: dict[str, list] = defaultdict(list)
        deletes: dict[str, list] = defaultdict(list)
        for wid, wanted in after.items():
            old = before[wid]
            for aid, role in wanted["authors"].items():
                if old["authors"].get(aid) != role:
                    inserts["authors"].append((wid, aid, role))
            deletes["authors"] += [(wid, aid) for aid in old["authors"]
                                   if aid not in wanted["authors"]]
            for name in ("genres", "tags", "days"):
                inserts[name] += [(wid, v) for v in wanted[name] - old[name]]
                deletes[name] += [(wid, v) for v in old[name] - wanted[name]]
        if deletes["authors"]:
            cur.executemany("DELETE FROM webtoon_author WHERE webtoon_id = %s AND author_id = %s",
                            deletes["authors"])
        if inserts["authors"]:
            cur.executemany("INSERT INTO webtoon_author (webtoon_id, author_id, role) "
                            "VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE role = VALUES(role)",
                            inserts["authors"])
        for name, table, column in (("genres", "webtoon_genre", "genre_id"),
                                    ("tags", "webtoon_tag", "tag_id"),
                                    ("days", "webtoon_publish_day", "day_of_week")):
            if deletes[name]:
                cur.executemany(f"DELETE FROM {table} WHERE webtoon_id = %s AND {column} = %s",
                                deletes[name])
            if inserts[name]:
                cur.executemany(f"INSERT IGNORE INTO {table} (webtoon_id, {column}) "
                                "VALUES (%s, %s)", inserts[name])

    # --- episodes ------------------------------------------------------------------------
    def _write_episodes(self, cur, items: Sequence[EpisodeItem]) -> list[Outcome]:
        title_keys = [(self._platform_id(it.platform), it.webtoon_external_id) for it in items]
        links = self._links(cur, set(title_keys))
        # Seasons of the titles we know.
        wanted_seasons = {(links[k]["webtoon_id"], it.season_no)
                          for it, k in zip(items, title_keys, strict=True) if k in links}
        seasons = self._ensure_seasons(cur, wanted_seasons)
        existing = self._episode_rows(cur, items, title_keys, links, seasons)

        outcomes: list[Outcome] = []
        new_rows: dict[tuple[int, int, int], dict] = {}
        updated: set[tuple[int, int, int]] = set()
        wanted_links: dict[tuple[tuple[int, int, int], int], tuple[str, str | None]] = {}
        touched: set[int] = set()
        touched_links: set[tuple[int, int]] = set()  # (platform_id, webtoon_id)
        for item, title_key in zip(items, title_keys, strict=True):
            link = links.get(title_key)
            if link is None:
                outcomes.append(Pending("unknown_webtoon"))
                continue
            wid = link["webtoon_id"]
            key = (wid, seasons[(wid, item.season_no)], item.episode_no)
            values = {"title": item.title, "pricing_type": item.pricing_type,
                      "published_at": _to_date(item.published_at),
                      "thumbnail_url": item.thumbnail_url}
            status = "unchanged"
            row = existing.get(key)
            if row is None:
                row = existing[key] = {"id": None, **values, "links": {}}
                new_rows[key] = row
                status = "inserted"
                touched.add(wid)
            elif link["primary"] and any(row[c] != values[c] for c in _EPISODE_COLUMNS):
                if row["published_at"] != values["published_at"]:
                    touched.add(wid)
                row.update(values)
                if row["id"] is not None:
                    updated.add(key)
                status = "updated"
            platform_id = title_key[0]
            current = row["links"].get(platform_id)
            target = (item.url, item.external_id)
            if current != target:
                row["links"][platform_id] = target
                wanted_links[(key, platform_id)] = target
                if current is None and status != "inserted":
                    # New on this platform, whatever else changed: counted as new there.
                    status = "linked"
                elif status == "unchanged":
                    status = "updated"
            if status != "unchanged":
                touched_links.add((platform_id, wid))
            outcomes.append(Stored(f"episode/{status}"))

        if new_rows:
            cur.executemany(
                "INSERT INTO webtoon_episode (webtoon_id, season_id, episode_no, "
                f"{', '.join(_EPISODE_COLUMNS)}) VALUES (%s, %s, %s, "
                f"{_placeholders(_EPISODE_COLUMNS)}) "
                # Another node may have inserted it since we looked: keep theirs.
                "ON DUPLICATE KEY UPDATE id = id",
                [(*key, *(row[c] for c in _EPISODE_COLUMNS)) for key, row in new_rows.items()])
            self._fill_episode_ids(cur, new_rows)
        if updated:
            cur.executemany(
                f"UPDATE webtoon_episode SET {', '.join(c + ' = %s' for c in _EPISODE_COLUMNS)} "
                "WHERE id = %s",
                [(*(existing[k][c] for c in _EPISODE_COLUMNS), existing[k]["id"])
                 for k in sorted(updated)])
        if wanted_links:
            cur.executemany(
                "INSERT INTO webtoon_episode_link (episode_id, platform_id, url, viewer_type, "
                "external_id) VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
                "url = VALUES(url), external_id = VALUES(external_id)",
                [(existing[key]["id"], pid, url, ViewerType.WEB.value, ext)
                 for (key, pid), (url, ext) in wanted_links.items()])
        if touched:
            self._refresh_webtoon_aggregates(cur, touched)
        if touched_links:
            self._refresh_link_update_dates(cur, touched_links)
        return outcomes

    def _ensure_seasons(self, cur, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
        if not wanted:
            return {}
        wids = sorted({wid for wid, _ in wanted})

        def load() -> dict[tuple[int, int], int]:
            cur.execute(f"SELECT webtoon_id, season_no, id FROM webtoon_season "
                        f"WHERE webtoon_id IN ({_placeholders(wids)})", wids)
            return {(wid, no): sid for wid, no, sid in cur.fetchall()}

        seasons = load()
        missing = sorted(wanted - set(seasons))
        if missing:
            cur.executemany("INSERT IGNORE INTO webtoon_season (webtoon_id, season_no) "
                            "VALUES (%s, %s)", missing)
            seasons = load()
        return seasons

    def _episode_rows(self, cur, items, title_keys, links, seasons) -> dict[tuple, dict]:
        # Per season, the episode_no range of the batch: reads only what the batch may touch.
        ranges: dict[int, list[int]] = {}
        for item, key in zip(items, title_keys, strict=True):
            if key not in links:
                continue
            sid = seasons[(links[key]["webtoon_id"], item.season_no)]
            low, high = ranges.get(sid, [item.episode_no, item.episode_no])
            ranges[sid] = [min(low, item.episode_no), max(high, item.episode_no)]
        rows: dict[tuple, dict] = {}
        if not ranges:
            return rows
        clause = "(e.season_id = %s AND e.episode_no BETWEEN %s AND %s)"
        clauses = " OR ".join([clause] * len(ranges))
        params = [v for sid, (low, high) in ranges.items() for v in (sid, low, high)]
        cur.execute(
            f"SELECT e.id, e.webtoon_id, e.season_id, e.episode_no, "
            f"{', '.join('e.' + c for c in _EPISODE_COLUMNS)}, l.platform_id, l.url, l.external_id "
            "FROM webtoon_episode e LEFT JOIN webtoon_episode_link l "
            "ON l.episode_id = e.id AND l.viewer_type = %s "
            f"WHERE {clauses}", (ViewerType.WEB.value, *params))
        width = len(_EPISODE_COLUMNS)
        for record in cur.fetchall():
            eid, wid, sid, no = record[:4]
            row = rows.setdefault((wid, sid, no), {
                "id": eid, **dict(zip(_EPISODE_COLUMNS, record[4:4 + width], strict=True)),
                "links": {}})
            platform_id, url, ext = record[4 + width:]
            if platform_id is not None:
                row["links"][platform_id] = (url, ext)
        return rows

    def _fill_episode_ids(self, cur, new_rows: dict[tuple, dict]) -> None:
        by_season: dict[int, list[int]] = defaultdict(list)
        for _, sid, no in new_rows:
            by_season[sid].append(no)
        clause = "(season_id = %s AND episode_no BETWEEN %s AND %s)"
        clauses = " OR ".join([clause] * len(by_season))
        params = [v for sid, nos in by_season.items() for v in (sid, min(nos), max(nos))]
        cur.execute(f"SELECT webtoon_id, season_id, episode_no, id FROM webtoon_episode "
                    f"WHERE {clauses}", params)
        for wid, sid, no, eid in cur.fetchall():
            row = new_rows.get((wid, sid, no))
            if row is not None:
                row["id"] = eid

    def _refresh_webtoon_aggregates(self, cur, webtoon_ids: set[int]) -> None:
        ids = sorted(webtoon_ids)
        marks = _placeholders(ids)
        # Assigning an equal value leaves the row (and updated_at) untouched.
        cur.execute(
            "UPDATE webtoon w SET w.last_update_date = COALESCE("
            "(SELECT MAX(e.published_at) FROM webtoon_episode e WHERE e.webtoon_id = w.id), "
            f"w.last_update_date) WHERE w.id IN ({marks})", ids)
        cur.execute(
            "INSERT INTO webtoon_statistics (webtoon_id, episode_count) "
            "SELECT webtoon_id, COUNT(*) FROM webtoon_episode "
            f"WHERE webtoon_id IN ({marks}) GROUP BY webtoon_id "
            "ON DUPLICATE KEY UPDATE episode_count = VALUES(episode_count)", ids)


    def _refresh_link_update_dates(self, cur, links: set[tuple[int, int]]) -> None:
        """Each platform link's latest episode date: the per-platform episode-update rule."""
        by_platform: dict[int, list[int]] = defaultdict(list)
        for platform_id, wid in links:
            by_platform[platform_id].append(wid)
        for platform_id, wids in sorted(by_platform.items()):
            ids = sorted(wids)
            cur.execute(
                "UPDATE webtoon_platform wp SET wp.last_update_date = COALESCE("
                "(SELECT MAX(e.published_at) FROM webtoon_episode e "
                " JOIN webtoon_episode_link l ON l.episode_id = e.id "
                "  AND l.platform_id = wp.platform_id WHERE e.webtoon_id = wp.webtoon_id), "
                f"wp.last_update_date) WHERE wp.platform_id = %s AND wp.webtoon_id IN "
                f"({_placeholders(ids)})", (platform_id, *ids))


class CataloguePipeline(BatchingPipeline):
    stats_prefix = "catalogue"
    # OperationalError: the server is gone, restarting, timed out, a deadlock or lock
    # wait; InterfaceError: the connection is closed. Both are retried until they pass.
    transient_errors = (pymysql.err.OperationalError, pymysql.err.InterfaceError)
    # The server refused one item's values (too long, bad string, NULL, foreign key).
    data_errors = (pymysql.err.DataError, pymysql.err.IntegrityError)

    def __init__(self, crawler: Crawler | None = None, *, mariadb_url: str,
                 images_store: str | None = None, **kwargs: Any):
        super().__init__(crawler, **kwargs)
        if not mariadb_url:
            raise ValueError("CataloguePipeline needs TOONPICK_MARIADB_URL")
        self.mariadb_url = mariadb_url
        self.images_store = images_store
        self.writer: CatalogueWriter | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CataloguePipeline:
        settings = crawler.settings
        return cls(crawler, mariadb_url=settings.get("TOONPICK_MARIADB_URL"),
                   images_store=settings.get("IMAGES_STORE") or None,
                   **cls.batching_settings(crawler))

    def accepts(self, item: Any) -> bool:
        return isinstance(item, WebtoonItem | EpisodeItem)

    def open_store(self) -> None:
        self.writer = CatalogueWriter(connect(self.mariadb_url), self.images_store)

    def reconnect(self) -> None:
        self.close_store()
        self.open_store()

    def close_store(self) -> None:
        if self.writer is not None:
            try:
                self.writer.conn.close()
            except pymysql.err.Error:
                pass  # already closed by the server
            self.writer = None

    def is_open(self) -> bool:
        return self.writer is not None

    def error_code(self, exc: BaseException) -> str:
        code = exc.args[0] if exc.args else None
        return str(code) if isinstance(code, int) else type(exc).__name__

    def write_batch(self, items: Sequence[Any], final: bool = False) -> list[Outcome]:
        if self.writer is None:
            raise pymysql.err.InterfaceError("the catalogue connection is not open")
        return self.writer.write(items)
