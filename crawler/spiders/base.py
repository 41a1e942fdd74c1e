"""What the three platform spiders share: arguments, catalogue reads, drop accounting.

Arguments (``scrapy crawl <platform> -a mode=... -a title=... -a today=...``):

- ``mode``: ``all`` (whole catalogue, finished titles included), ``new`` (titles
  the catalogue does not know), ``episodes`` (titles due for an update, only
  their new episodes), ``title`` (one title, all episodes). ``title=`` alone
  implies ``mode=title``.
- ``title``: the platform's title id or title page URL.
- ``today``: YYYY-MM-DD for the due-for-update rule; default the
  ``TOONPICK_CRAWL_TODAY`` setting, else today in ``TOONPICK_TIMEZONE``.

Bad arguments raise ``ValueError`` when the spider is built, before any request.
A payload the parser rejects is counted as ``parse/dropped/<reason>`` and logged
once per reason; the crawl goes on. Requests carry their data in ``cb_kwargs``,
never in ``meta`` (the cluster keeps its lease bookkeeping there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

import scrapy
from scrapy.http import Response

from crawler.cluster.spider import ClusterSpider, start_entry
from crawler.parsing.common import Drop, ParseError
from shared.domain import CrawlMode

Parsed = TypeVar("Parsed")

MODES = ", ".join(mode.value for mode in CrawlMode)


class PlatformSpider(ClusterSpider):
    platform: ClassVar[str]
    base_url_setting: ClassVar[str]
    headers: ClassVar[dict[str, str]]
    # Callbacks whose failure (HTTP error, timeout) must not end a request chain.
    errbacks: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        *args: Any,
        mode: str | None = None,
        title: str | None = None,
        today: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if mode is None:
            mode = CrawlMode.TITLE.value if title else CrawlMode.ALL.value
        try:
            self.mode = CrawlMode(str(mode).strip().lower())
        except ValueError:
            raise ValueError(f"{self.name}: mode {mode!r} is not one of {MODES}") from None
        if self.mode is CrawlMode.TITLE and not title:
            raise ValueError(f"{self.name}: mode=title needs -a title=<title id or URL>")
        if title and self.mode is not CrawlMode.TITLE:
            raise ValueError(f"{self.name}: -a title=... only goes with mode=title, not {mode!r}")
        self.title_id = self.title_id_from_argument(title) if title else None
        self._today = self._parse_today(today) if today else None
        self._known: set[str] | None = None
        self._logged_reasons: set[str] = set()

    # --- what a platform provides ------------------------------------------------

    def title_id_from_argument(self, value: str) -> str:
        raise NotImplementedError

    # --- settings and arguments --------------------------------------------------

    @staticmethod
    def _parse_today(value: str) -> date:
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"today {value!r} is not a date in the form YYYY-MM-DD") from None

    @property
    def base_url(self) -> str:
        return self.crawler.settings.get(self.base_url_setting).rstrip("/")

    @property
    def today(self) -> date:
        if self._today is None:
            configured = self.crawler.settings.get("TOONPICK_CRAWL_TODAY") or ""
            if configured:
                self._today = self._parse_today(configured)
            else:
                zone = self.crawler.settings.get("TOONPICK_TIMEZONE") or "Asia/Seoul"
                self._today = datetime.now(ZoneInfo(zone)).date()
        return self._today

    # --- catalogue reads (tests override these two) -------------------------------

    def known_external_ids(self) -> set[str]:
        """Title ids of this platform the catalogue already has."""
        from shared.catalogue import known_external_ids

        return known_external_ids(self.crawler.settings.get("TOONPICK_MARIADB_URL"), self.platform)

    def titles_due(self) -> dict[str, int | None]:
        """Titles due for an episode update today → the last episode number known."""
        from shared.catalogue import titles_due_for_update

        due = titles_due_for_update(
            self.crawler.settings.get("TOONPICK_MARIADB_URL"), self.platform, self.today
        )
        return {title.external_id: title.last_episode_no for title in due}

    def wanted(self, external_id: str) -> bool:
        """Whether a title seen on a list page belongs to this run (``all``/``new``)."""
        if self.mode is CrawlMode.NEW:
            if self._known is None:
                self._known = {str(known) for known in self.known_external_ids()}
            return external_id not in self._known
        return True

    # --- requests ------------------------------------------------------------------

    def entry(
        self,
        url: str,
        callback: str,
        cb_kwargs: dict[str, Any] | None = None,
        method: str = "GET",
        body: str | None = None,
    ) -> dict[str, Any]:
        return start_entry(url, callback=callback, method=method, body=body, cb_kwargs=cb_kwargs)

    def follow(
        self,
        url: str,
        callback: str,
        cb_kwargs: dict[str, Any] | None = None,
        method: str = "GET",
        body: str | None = None,
    ) -> scrapy.Request:
        """A child request: a fresh one, so the parent's meta (leases) is not inherited."""
        return self.request_from_entry(self.entry(url, callback, cb_kwargs, method, body))

    def request_from_entry(self, entry: dict[str, Any]) -> scrapy.Request:
        request = super().request_from_entry(entry)
        for name, value in self.headers.items():
            request.headers.setdefault(name, value)
        errback = self.errbacks.get(entry.get("callback") or "")
        if errback:
            request = request.replace(errback=getattr(self, errback))
        return request

    # --- parse failures --------------------------------------------------------------

    def count_drop(self, reason: str, detail: str, url: str) -> None:
        self.crawler.stats.inc_value(f"parse/dropped/{reason}")
        if reason not in self._logged_reasons:
            self._logged_reasons.add(reason)
            self.logger.warning(
                "dropped platform data (%s) from %s: %s (further drops of this reason "
                "are only counted)", reason, url, detail,
            )

    def count_drops(self, drops: Iterable[Drop], url: str) -> None:
        for reason, detail in drops:
            self.count_drop(reason, detail, url)

    def parsed(
        self, response: Response, parse: Callable[..., Parsed], *args: Any, **kwargs: Any
    ) -> Parsed | None:
        """``parse(response.body, ...)``, or None with the drop counted."""
        try:
            return parse(response.body, *args, **kwargs)
        except ParseError as exc:
            self.count_drop(exc.reason, exc.detail, response.url)
            return None
