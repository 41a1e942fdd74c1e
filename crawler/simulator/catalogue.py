"""A deterministic, seeded catalogue of webtoons on the three simulated platforms.

Pure Python: the server renders it into each platform's payloads
(``naver.py``, ``kakao.py``, ``kakaopage.py``); tests read ``expected()``.

A title is in one of three states, and ``advance(days)`` moves the clock and
the titles between them:

- ONGOING: gets one new episode on each of its publish days (dated that day);
  the newest ``preview`` episodes are paid previews.
- HIATUS (Naver and Kakao only; KakaoPage payloads cannot say it): no new episodes.
- COMPLETED: a fixed episode list, no publish days any more, no paid previews.

Each simulated day first applies that day's status changes (ongoing→completed,
ongoing→hiatus, hiatus→ongoing; a few titles, chosen from a generator seeded
with the catalogue seed and the date), then releases the day's episodes.
Everything derives from ``random.Random`` instances seeded from ``seed``, so two
catalogues built with the same arguments and advanced the same way are equal.

Two options make some titles hostile, each ``K`` titles per platform, chosen
from titles published on one platform where there are enough of them:

- ``malformed=K``: broken payloads (not JSON, a missing title, wrong types) and
  ``K`` broken episodes; ``expected()`` leaves them out and lists them apart.
- ``oversized=K``: valid but longer than the catalogue's columns: a synopsis of
  ``OVERSIZED_SYNOPSIS_BYTES`` ending in ``CUT_EMOJI``, an author name of
  ``OVERSIZED_AUTHOR_CHARS`` and one episode whose subtitle starts with
  ``OVERSIZED_SUBTITLE_CHARS`` characters.
  They are expected in the stores like any title (listed again under
  ``expected()["oversized"]``); their long values as served, a store may hold
  them cut to its columns.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from shared.domain import AgeRating, AuthorRole, DayOfWeek, Platform, PricingType, WebtoonStatus

PLATFORMS: tuple[Platform, ...] = (Platform.NAVER, Platform.KAKAO, Platform.KAKAOPAGE)

# (Korean name, Naver curation suffix, KakaoPage subcategory uid)
GENRES: tuple[tuple[str, str, str], ...] = (
    ("판타지", "FANTASY", "86"),
    ("로맨스", "PURE", "87"),
    ("액션", "ACTION", "88"),
    ("드라마", "DRAMA", "89"),
    ("일상", "DAILY", "90"),
    ("개그", "COMIC", "91"),
    ("스릴러", "THRILL", "92"),
    ("무협", "HISTORICAL", "115"),
    ("스포츠", "SPORTS", "93"),
    ("감성", "SENSIBILITY", "94"),
)
CUSTOM_TAGS: tuple[str, ...] = (
    "명작", "먼치킨", "회귀", "힐링", "복수", "성장물", "사이다", "로판", "학원물", "짝사랑",
)

_PREFIXES = (
    "달빛", "검은", "푸른", "마지막", "이상한", "나의", "전지적", "악녀의", "귀환한", "천재",
    "은밀한", "잃어버린", "붉은", "하얀", "작은", "거대한", "미친", "조용한", "빛나는", "위험한",
    "완벽한", "평범한", "최강", "외로운", "달콤한", "차가운", "뜨거운", "비밀의", "황금", "별빛",
)
_MIDDLES = ("기사의", "마법사의", "용의", "학교의", "왕국의", "탑의", "밤의", "여름의", "악마의")
_NOUNS = (
    "검객", "기사", "마법사", "정원", "학교", "연애", "탑", "던전", "왕자", "계약",
    "신부", "황녀", "헌터", "요리사", "탐정", "소년", "소녀", "도시", "전쟁", "귀환",
    "일기", "편지", "약속", "계절", "회귀자", "용사", "공작", "의사", "아이돌", "선배",
)
_SURNAMES = "김이박최정강조윤장임한오서신권황안송류홍"
_GIVEN = "민서준지현우진수영하윤도연재은태소유나혜"
_PEN_NAMES = (
    "SIU", "REDICE", "Carnby", "HOONI", "JH", "MOON", "Team 별", "studio 온", "LUCY", "DUMA",
)

_NAVER_IDS = (700_000, 850_000)
_KAKAO_IDS = 2_000
_KAKAOPAGE_IDS = 50_000_000

_DAY_PICK = list(DayOfWeek)

# oversized=K: what "longer than the columns" means (webtoon.summary was TEXT, 65,535
# bytes; author.name is VARCHAR(255), webtoon_episode.title VARCHAR(512)).
OVERSIZED_SYNOPSIS_BYTES = 500_000
OVERSIZED_AUTHOR_CHARS = 300
OVERSIZED_SUBTITLE_CHARS = 2_000
# Half of 😀 (its high surrogate): what a platform shortening text in UTF-16 (JavaScript)
# leaves at the end; JSON carries it as "\ud83d", and no store can encode it as it is.
CUT_EMOJI = "\ud83d"


@dataclass
class Author:
    name: str
    role: AuthorRole
    artist_id: int


@dataclass
class Episode:
    seq: int  # 1-based position in release order; stable, used for platform episode ids
    season: int
    no: int
    released: date
    # None, or how the platform payload breaks this entry: "missing_no" | "bad_no"
    malformed: str | None = None
    # Text the platforms put before the episode's usual subtitle (oversized=K).
    subtitle_prefix: str = ""


@dataclass
class Title:
    platform: Platform
    external_id: str
    webtoon_key: int  # the same key on two platforms = one webtoon published on both
    name: str
    authors: list[Author]
    status: WebtoonStatus
    age: AgeRating
    days: list[DayOfWeek]  # publish days while running (kept when completed, not served)
    genre: str
    tags: list[str]
    synopsis: str
    # FREE | WAIT_FREE | PAY: the title's business model (what older episodes cost)
    model: str
    preview: int  # newest episodes that are paid previews while ONGOING
    free_first: int  # episodes always free at the start (wait-free and pay models)
    view_count: int
    star_score: float
    favorite_count: int
    string_no: bool  # the payload carries episode numbers as strings
    slash_join: str  # how Naver joins several author names: " / " or "/"
    daily_plus: bool = False  # Naver only: no weekday, listed under dailyPlus
    malformed: str | None = None  # "not_json" | "missing_title" | "wrong_type"
    oversized: bool = False  # synopsis, an author name and an episode subtitle too long
    episodes: list[Episode] = field(default_factory=list)

    @property
    def numeric_id(self) -> int:
        return int(self.external_id)

    @property
    def catchphrase(self) -> str:
        """The synopsis' first two lines: what list cards show."""
        return "\n".join(self.synopsis.split("\n")[:2])

    @property
    def served_days(self) -> list[DayOfWeek]:
        """Publish days as the platform shows them: none once the title is completed."""
        if self.status == WebtoonStatus.COMPLETED or self.daily_plus:
            return []
        return sorted(self.days, key=lambda d: d.weekday)

    @property
    def start_date(self) -> date:
        return self.episodes[0].released

    @property
    def last_date(self) -> date:
        return self.episodes[-1].released

    def is_up(self, today: date) -> bool:
        return self.status == WebtoonStatus.ONGOING and self.last_date == today

    def paid_previews(self) -> int:
        # A title with fewer episodes than its preview window has them all in preview.
        return min(self.preview, len(self.episodes)) if self.status == WebtoonStatus.ONGOING else 0

    def pricing(self, index: int) -> PricingType:
        """The price of the episode at ``index`` (0-based, release order) today."""
        if index >= len(self.episodes) - self.paid_previews():
            return PricingType.PAID
        if index < self.free_first or self.model == "FREE":
            return PricingType.FREE
        return PricingType.WAIT_FREE if self.model == "WAIT_FREE" else PricingType.PAID

    def next_episode(self, released: date) -> Episode:
        last = self.episodes[-1]
        return Episode(seq=last.seq + 1, season=last.season, no=last.no + 1, released=released)


class Catalogue:
    """All simulated titles and the simulated clock."""

    def __init__(
        self,
        seed: int = 7,
        titles: int = 60,
        episodes: int = 12,
        start_date: date = date(2026, 11, 2),
        malformed: int = 0,
        oversized: int = 0,
    ) -> None:
        if titles < 0 or episodes < 1 or malformed < 0 or oversized < 0:
            raise ValueError("titles, malformed and oversized must be >= 0, episodes >= 1")
        self.seed = seed
        self.episodes_per_title = episodes
        self.malformed_per_platform = malformed
        self.oversized_per_platform = oversized
        self.today = start_date
        self.version = 0  # bumped on every change, so renderers can cache per version
        self._titles: dict[Platform, list[Title]] = {p: [] for p in PLATFORMS}
        self._index: dict[tuple[Platform, str], Title] = {}
        self._artist_ids: dict[str, int] = {}
        self._generate(random.Random(seed), titles)

    # ---- reading -------------------------------------------------------------------

    def titles_of(self, platform: Platform | str) -> list[Title]:
        """The platform's titles, most popular first (the order the lists use)."""
        return self._titles[Platform(platform)]

    def title(self, platform: Platform | str, external_id: str | int) -> Title | None:
        return self._index.get((Platform(platform), str(external_id)))

    def all_titles(self) -> list[Title]:
        return [t for p in PLATFORMS for t in self._titles[p]]

    def expected(self) -> dict[str, Any]:
        """Ground truth a correct crawl of every platform must reproduce.

        ``platforms`` holds every title the stores must end with, oversized ones
        included (their values as served: a store may hold them cut to its columns);
        ``malformed`` the titles and episodes left out; ``oversized`` per platform,
        each oversized title's long values (``synopsis_bytes``, ``author``, the
        long-subtitled ``episode``).
        """
        platforms: dict[str, dict[str, Any]] = {}
        bad_titles: dict[str, list[str]] = {}
        bad_episodes: dict[str, dict[str, list[list[int]]]] = {}
        long_fields: dict[str, dict[str, Any]] = {}
        webtoons: set[tuple[str, frozenset[str]]] = set()
        for platform in PLATFORMS:
            good: dict[str, Any] = {}
            bad_titles[platform.value] = []
            bad_episodes[platform.value] = {}
            long_fields[platform.value] = {}
            for t in sorted(self._titles[platform], key=lambda t: t.numeric_id):
                if t.malformed:
                    bad_titles[platform.value].append(t.external_id)
                    continue
                if t.oversized:
                    long_fields[platform.value][t.external_id] = _long_fields(t)
                names = _unique_names(t.authors)
                webtoons.add((t.name, frozenset(names)))
                kept = [(i, e) for i, e in enumerate(t.episodes) if not e.malformed]
                broken = [[e.season, e.no] for e in t.episodes if e.malformed]
                if broken:
                    bad_episodes[platform.value][t.external_id] = broken
                good[t.external_id] = {
                    "title": t.name,
                    "authors": names,
                    "status": t.status.value,
                    "days": [d.value for d in t.served_days],
                    "episodes": [[e.season, e.no] for _, e in kept],
                    "pricing": [t.pricing(i).value for i, _ in kept],
                    "last_episode_date": t.last_date.isoformat(),
                    "age_rating": t.age.value,
                    "genres": [t.genre],
                    "tags": list(t.tags),
                }
            platforms[platform.value] = good
        return {
            "today": self.today.isoformat(),
            "platforms": platforms,
            "webtoons": len(webtoons),
            "malformed": {"titles": bad_titles, "episodes": bad_episodes},
            "oversized": long_fields,
        }

    # ---- the clock -----------------------------------------------------------------

    def advance(self, days: int) -> date:
        """Move the clock ``days`` forward, releasing episodes and changing statuses."""
        if days < 0:
            raise ValueError("days must be >= 0")
        for _ in range(days):
            self.today += timedelta(days=1)
            self._change_statuses(self.today)
            weekday = DayOfWeek.from_weekday(self.today.weekday())
            for t in self.all_titles():
                if t.status == WebtoonStatus.ONGOING and weekday in t.days and not t.daily_plus:
                    t.episodes.append(t.next_episode(self.today))
        self.version += 1
        return self.today

    def _change_statuses(self, day: date) -> None:
        rng = random.Random(f"{self.seed}:{day.isoformat()}")
        ongoing = [t for t in self.all_titles() if t.status == WebtoonStatus.ONGOING]
        hiatus = [t for t in self.all_titles() if t.status == WebtoonStatus.HIATUS]
        # One kind of change per day, in turn, so a week's advance shows all three.
        turn = day.toordinal() % 3
        if turn == 0 and ongoing:
            for t in rng.sample(ongoing, max(1, len(ongoing) // 100)):
                t.status = WebtoonStatus.COMPLETED
        elif turn == 1:
            pausable = [t for t in ongoing if t.platform != Platform.KAKAOPAGE]
            if pausable:
                for t in rng.sample(pausable, max(1, len(pausable) // 80)):
                    t.status = WebtoonStatus.HIATUS
        elif turn == 2 and hiatus:
            for t in rng.sample(hiatus, max(1, len(hiatus) // 4)):
                t.status = WebtoonStatus.ONGOING

    # ---- generation ----------------------------------------------------------------

    def _generate(self, rng: random.Random, total: int) -> None:
        counts = {
            Platform.NAVER: round(total * 0.40),
            Platform.KAKAO: round(total * 0.35),
        }
        counts[Platform.KAKAOPAGE] = total - counts[Platform.NAVER] - counts[Platform.KAKAO]
        # Each webtoon gets one or two platforms; about 5% of titles are second copies.
        remaining = dict(counts)
        placements: list[tuple[Platform, ...]] = []
        pairs = [
            (Platform.NAVER, Platform.KAKAO),
            (Platform.NAVER, Platform.KAKAOPAGE),
            (Platform.KAKAO, Platform.KAKAOPAGE),
        ]
        for i in range(total // 20):
            pair = pairs[i % 3]
            if all(remaining[p] > 0 for p in pair):
                placements.append(pair)
                for p in pair:
                    remaining[p] -= 1
        for p in PLATFORMS:
            placements.extend((p,) for _ in range(remaining[p]))

        ids = {
            Platform.NAVER: rng.sample(range(*_NAVER_IDS), counts[Platform.NAVER]),
            Platform.KAKAO: rng.sample(
                range(_KAKAO_IDS, _KAKAO_IDS + max(8_000, 4 * counts[Platform.KAKAO])),
                counts[Platform.KAKAO],
            ),
            Platform.KAKAOPAGE: rng.sample(
                range(_KAKAOPAGE_IDS, _KAKAOPAGE_IDS + max(1_000_000, 4 * total)),
                counts[Platform.KAKAOPAGE],
            ),
        }
        used_names: set[str] = set()
        for key, platforms in enumerate(placements):
            name = self._title_name(rng, used_names)
            authors = self._authors(rng)
            genre = rng.choice(GENRES)[0]
            tags = rng.sample(CUSTOM_TAGS, rng.randint(0, 3))
            for platform in platforms:
                title = self._title(rng, platform, str(ids[platform].pop()), key, name, authors)
                title.genre, title.tags = genre, list(tags)
                self._titles[platform].append(title)
                self._index[(platform, title.external_id)] = title
        for platform in PLATFORMS:
            self._titles[platform].sort(key=lambda t: (-t.view_count, t.numeric_id))
        self._break_some(rng)
        # Its own generator: asking for long fields changes nothing else in the catalogue.
        self._oversize_some(random.Random(f"{self.seed}:oversized"))

    def _title_name(self, rng: random.Random, used: set[str]) -> str:
        for _ in range(40):
            shape = rng.random()
            if shape < 0.45:
                name = f"{rng.choice(_PREFIXES)} {rng.choice(_NOUNS)}"
            elif shape < 0.65:
                name = f"{rng.choice(_PREFIXES)}{rng.choice(_NOUNS)}"
            else:
                name = f"{rng.choice(_PREFIXES)} {rng.choice(_MIDDLES)} {rng.choice(_NOUNS)}"
            if name not in used:
                break
        else:
            name = f"{name} {len(used)}부"
        used.add(name)
        return name

    def _author(self, rng: random.Random, role: AuthorRole) -> Author:
        if rng.random() < 0.15:
            name = rng.choice(_PEN_NAMES)
        else:
            name = rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN)
        artist_id = self._artist_ids.setdefault(name, 100_000 + 37 * len(self._artist_ids))
        return Author(name=name, role=role, artist_id=artist_id)

    def _authors(self, rng: random.Random) -> list[Author]:
        n = rng.choices((1, 2, 3), weights=(5, 4, 1))[0]
        if n == 1:
            return [self._author(rng, AuthorRole.BOTH)]
        roles = [AuthorRole.WRITER, AuthorRole.ARTIST, AuthorRole.ORIGINAL][:n]
        authors: list[Author] = []
        for role in roles:
            author = self._author(rng, role)
            while any(a.name == author.name for a in authors):
                author = self._author(rng, role)
            authors.append(author)
        return authors

    def _title(
        self,
        rng: random.Random,
        platform: Platform,
        external_id: str,
        key: int,
        name: str,
        authors: list[Author],
    ) -> Title:
        status = rng.choices(
            (WebtoonStatus.ONGOING, WebtoonStatus.HIATUS, WebtoonStatus.COMPLETED),
            weights=(70, 0 if platform == Platform.KAKAOPAGE else 8, 22),
        )[0]
        ages = (AgeRating.ALL, AgeRating.AGE_12, AgeRating.AGE_15, AgeRating.ADULT)
        age_weights = (40, 25, 25, 10)
        if platform == Platform.KAKAOPAGE:  # KakaoPage grades are All / Fifteen / Nineteen
            ages, age_weights = (AgeRating.ALL, AgeRating.AGE_15, AgeRating.ADULT), (45, 45, 10)
        days = sorted(rng.sample(_DAY_PICK, rng.choices((1, 2), weights=(8, 2))[0]),
                      key=lambda d: d.weekday)
        daily_plus = platform == Platform.NAVER and rng.random() < 0.06
        model = "FREE"
        if platform != Platform.NAVER:
            model = rng.choices(("FREE", "WAIT_FREE", "PAY"), weights=(3, 6, 1))[0]
        preview = rng.choice((1, 2, 3)) if rng.random() < 0.35 else 0
        title = Title(
            platform=platform,
            external_id=external_id,
            webtoon_key=key,
            name=name,
            authors=authors,
            status=status,
            age=rng.choices(ages, weights=age_weights)[0],
            days=days,
            genre="",
            tags=[],
            synopsis=f"{name}의 이야기. " + rng.choice(
                ("모든 것이 바뀌었다.", "다시 시작된다.", "아무도 몰랐던 비밀.", "운명이 움직인다.")
            ),
            model=model,
            preview=preview,
            free_first=3,
            view_count=rng.randint(1_000, 5_000_000),
            star_score=round(rng.uniform(8.5, 9.99), 2),
            favorite_count=rng.randint(100, 900_000),
            string_no=rng.random() < (0.5 if platform == Platform.KAKAO else 0.15),
            slash_join=rng.choice((" / ", "/")),
            daily_plus=daily_plus,
        )
        title.episodes = self._first_episodes(rng, title)
        return title

    def _first_episodes(self, rng: random.Random, title: Title) -> list[Episode]:
        count = max(1, self.episodes_per_title + rng.randint(-2, 2))
        if title.status == WebtoonStatus.COMPLETED:
            count += rng.randint(0, self.episodes_per_title)
        # Where the newest episode sits: today for running titles, further back otherwise.
        if title.status == WebtoonStatus.ONGOING:
            newest = self.today
        elif title.status == WebtoonStatus.HIATUS:
            newest = self.today - timedelta(days=rng.randint(14, 60))
        else:
            newest = self.today - timedelta(days=rng.randint(60, 700))
        weekdays = {d.weekday for d in title.days}
        dates: list[date] = []
        day = newest
        while len(dates) < count:
            if title.daily_plus:
                dates.append(day)
                day -= timedelta(days=7)
                continue
            if day.weekday() in weekdays:
                dates.append(day)
            day -= timedelta(days=1)
        dates.reverse()
        # Some Kakao titles run a second season that numbers its episodes from 1 again.
        second_season_from = count + 1
        if title.platform == Platform.KAKAO and count >= 6 and rng.random() < 0.1:
            second_season_from = count // 2 + 1
        episodes = []
        for seq, released in enumerate(dates, start=1):
            season = 1 if seq < second_season_from else 2
            no = seq if season == 1 else seq - second_season_from + 1
            episodes.append(Episode(seq=seq, season=season, no=no, released=released))
        return episodes

    def _break_some(self, rng: random.Random) -> None:
        k = self.malformed_per_platform
        if not k:
            return
        kinds = ("not_json", "missing_title", "wrong_type")
        copies = Counter(t.webtoon_key for t in self.all_titles())
        for platform in PLATFORMS:
            titles = sorted(self._titles[platform], key=lambda t: t.numeric_id)
            # Prefer titles published on one platform, so the webtoon count stays exact.
            single = [t for t in titles if copies[t.webtoon_key] == 1]
            pool = single if len(single) >= k else titles
            broken = rng.sample(pool, min(k, len(pool)))
            for i, t in enumerate(sorted(broken, key=lambda t: t.numeric_id)):
                t.malformed = kinds[i % 3]
            good = [t for t in titles if not t.malformed]
            for i in range(min(k, len(good))):
                t = rng.choice(good)
                candidates = [e for e in t.episodes[:-t.preview or None] if not e.malformed]
                if not candidates:
                    candidates = [e for e in t.episodes if not e.malformed]
                if candidates:
                    rng.choice(candidates).malformed = ("missing_no", "bad_no")[i % 2]


    def _oversize_some(self, rng: random.Random) -> None:
        k = self.oversized_per_platform
        if not k:
            return
        copies = Counter(t.webtoon_key for t in self.all_titles())
        for platform in PLATFORMS:
            titles = sorted((t for t in self._titles[platform] if not t.malformed),
                            key=lambda t: t.numeric_id)
            single = [t for t in titles if copies[t.webtoon_key] == 1]
            pool = single if len(single) >= k else titles
            for t in rng.sample(pool, min(k, len(pool))):
                t.oversized = True
                t.synopsis = _long_text(rng, OVERSIZED_SYNOPSIS_BYTES, t.synopsis,
                                        lines=True) + " " + CUT_EMOJI
                # A new Author: the old one may be another title's too (authors are shared
                # by a webtoon's platform copies, which then show the long name alike).
                name = _long_text(rng, OVERSIZED_AUTHOR_CHARS, f"{t.external_id} {t.name}",
                                  exact=True)
                artist_id = self._artist_ids.setdefault(
                    name, 100_000 + 37 * len(self._artist_ids))
                t.authors[0] = Author(name=name, role=t.authors[0].role, artist_id=artist_id)
                episodes = [e for e in t.episodes if not e.malformed]
                if episodes:
                    episode = rng.choice(episodes)
                    episode.subtitle_prefix = _long_text(
                        rng, OVERSIZED_SUBTITLE_CHARS, t.name, exact=True) + " "


def _long_text(rng: random.Random, size: int, start: str, *, lines: bool = False,
               exact: bool = False) -> str:
    """Korean words after ``start``, single-spaced: ``size`` characters when ``exact``,
    else at least ``size`` UTF-8 bytes (``lines``: a line break every dozen words).

    No "/", "," or "&": KakaoPage and Naver split author names on them.
    """
    words = [start]
    length = len(start.encode("utf-8")) if not exact else len(start)
    while length < size:
        word = rng.choice(_PREFIXES + _MIDDLES + _NOUNS)
        separator = "\n" if lines and len(words) % 12 == 0 else " "
        words.append(separator + word)
        length += len((separator + word).encode("utf-8")) if not exact else len(separator + word)
    text = "".join(words)
    if exact:
        text = text[:size]
        # A cut right after a space would end the text in whitespace, which cleaning strips.
        if text.endswith(" "):
            text = text[:-1] + "끝"
    return text


def _long_fields(title: Title) -> dict[str, Any]:
    """What ``expected()`` says about an oversized title's long values, as served."""
    long_episode = next((e for e in title.episodes if e.subtitle_prefix), None)
    return {
        # The cut emoji counts 3 bytes, as the U+FFFD that replaces it in the stores.
        "synopsis_bytes": len(title.synopsis.encode("utf-8", "surrogatepass")),
        "author": next(a.name for a in title.authors if len(a.name) >= OVERSIZED_AUTHOR_CHARS),
        "episode": [long_episode.season, long_episode.no] if long_episode else None,
    }


def _unique_names(authors: list[Author]) -> list[str]:
    names: list[str] = []
    for a in authors:
        if a.name not in names:
            names.append(a.name)
    return names
