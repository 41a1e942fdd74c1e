"""The original system's normalised values, shared by crawler, recommender and API.

The names are the Java enum names of the system this replaces: the platform's
API server reads them back from MariaDB, so they never change spelling.
"""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    NAVER = "NAVER"
    KAKAO = "KAKAO"
    KAKAOPAGE = "KAKAOPAGE"
    RIDI = "RIDI"
    LEZHIN = "LEZHIN"
    TOOMICS = "TOOMICS"
    BOMTOON = "BOMTOON"
    MRBLUE = "MRBLUE"
    BUFF = "BUFF"


class WebtoonStatus(StrEnum):
    ONGOING = "ONGOING"
    HIATUS = "HIATUS"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


class AgeRating(StrEnum):
    ALL = "ALL"
    AGE_12 = "AGE_12"
    AGE_15 = "AGE_15"
    ADULT = "ADULT"


class AuthorRole(StrEnum):
    WRITER = "WRITER"
    ARTIST = "ARTIST"
    BOTH = "BOTH"
    ORIGINAL = "ORIGINAL"


class PricingType(StrEnum):
    FREE = "FREE"
    PAID = "PAID"
    WAIT_FREE = "WAIT_FREE"


class ViewerType(StrEnum):
    WEB = "WEB"
    MOBILE = "MOBILE"


class GenreType(StrEnum):
    MAIN = "MAIN"
    SUB = "SUB"


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @classmethod
    def from_weekday(cls, weekday: int) -> DayOfWeek:
        """Python's ``date.weekday()`` (Monday is 0) to the enum."""
        return list(cls)[weekday % 7]

    @property
    def weekday(self) -> int:
        return list(DayOfWeek).index(self)

    def next(self) -> DayOfWeek:
        return DayOfWeek.from_weekday(self.weekday + 1)


class CrawlMode(StrEnum):
    """What a crawl run covers (spider argument ``mode``)."""

    ALL = "all"  # full catalogue, finished titles included
    NEW = "new"  # only titles the catalogue does not know yet
    EPISODES = "episodes"  # only titles due for an episode update
    TITLE = "title"  # one title, by platform id or URL
