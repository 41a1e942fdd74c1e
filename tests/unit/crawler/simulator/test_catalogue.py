from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from crawler.simulator.catalogue import (
    CUT_EMOJI,
    OVERSIZED_AUTHOR_CHARS,
    OVERSIZED_SUBTITLE_CHARS,
    OVERSIZED_SYNOPSIS_BYTES,
    Catalogue,
)
from shared.domain import DayOfWeek, Platform, WebtoonStatus


def test_same_seed_gives_the_same_catalogue() -> None:
    assert Catalogue(seed=11, titles=80).expected() == Catalogue(seed=11, titles=80).expected()
    assert Catalogue(seed=11, titles=80).expected() != Catalogue(seed=12, titles=80).expected()


def test_same_seed_and_advance_give_the_same_catalogue() -> None:
    a, b = Catalogue(seed=3, titles=90), Catalogue(seed=3, titles=90)
    a.advance(5)
    b.advance(2)
    b.advance(3)
    assert a.expected() == b.expected()


def test_titles_split_across_platforms() -> None:
    expected = Catalogue(titles=100).expected()
    counts = {p: len(v) for p, v in expected["platforms"].items()}
    assert counts == {"NAVER": 40, "KAKAO": 35, "KAKAOPAGE": 25}


def test_some_webtoons_are_on_two_platforms_with_the_same_title_and_authors() -> None:
    expected = Catalogue(titles=100).expected()
    seen: dict[tuple[str, frozenset[str]], list[str]] = {}
    for platform, titles in expected["platforms"].items():
        for entry in titles.values():
            seen.setdefault((entry["title"], frozenset(entry["authors"])), []).append(platform)
    doubles = [platforms for platforms in seen.values() if len(platforms) == 2]
    assert len(doubles) == 5
    assert all(len(set(p)) == 2 for p in doubles)
    assert expected["webtoons"] == len(seen) == 95
    # A title string is never reused by another webtoon.
    assert len({title for title, _ in seen}) == len(seen)


def test_titles_have_the_documented_variety() -> None:
    cat = Catalogue(titles=300)
    titles = cat.all_titles()
    statuses = Counter(t.status for t in titles)
    assert statuses[WebtoonStatus.ONGOING] > statuses[WebtoonStatus.COMPLETED] > 0
    assert statuses[WebtoonStatus.HIATUS] > 0
    assert all(t.status != WebtoonStatus.HIATUS for t in cat.titles_of(Platform.KAKAOPAGE))
    assert {len(t.days) for t in titles} == {1, 2}
    assert any(t.daily_plus for t in cat.titles_of(Platform.NAVER))
    assert {len(t.authors) for t in titles} == {1, 2, 3}
    assert any(" " in t.name for t in titles) and any(" " not in t.name for t in titles)
    assert any(t.paid_previews() for t in titles)
    assert all(t.start_date < cat.today for t in titles)
    assert any(t.string_no for t in cat.titles_of(Platform.NAVER))
    assert any(not t.string_no for t in cat.titles_of(Platform.NAVER))


def test_ongoing_titles_are_current_and_episodes_fall_on_publish_days() -> None:
    cat = Catalogue(titles=200)
    for t in cat.all_titles():
        if t.daily_plus:
            continue
        assert {e.released.weekday() for e in t.episodes} <= {d.weekday for d in t.days}
        if t.status == WebtoonStatus.ONGOING:
            assert cat.today - t.last_date < timedelta(days=7)
        else:
            assert t.last_date < cat.today


def test_expected_has_the_documented_shape() -> None:
    expected = Catalogue(titles=60, start_date=date(2026, 11, 2)).expected()
    assert expected["today"] == "2026-11-02"
    entry = next(iter(expected["platforms"]["KAKAO"].values()))
    assert set(entry) >= {"title", "authors", "status", "days", "episodes", "last_episode_date"}
    assert entry["status"] in {s.value for s in WebtoonStatus}
    assert all(d in {x.value for x in DayOfWeek} for d in entry["days"])
    assert all(isinstance(s, int) and isinstance(n, int) for s, n in entry["episodes"])
    assert date.fromisoformat(entry["last_episode_date"]) <= date(2026, 11, 2)


def test_advance_adds_episodes_to_ongoing_titles_on_their_days_only() -> None:
    cat = Catalogue(seed=5, titles=150)
    before = {
        (t.platform, t.external_id): (t.status, len(t.episodes)) for t in cat.all_titles()
    }
    start = cat.today
    cat.advance(7)
    assert cat.today == start + timedelta(days=7)
    week = {start + timedelta(days=i) for i in range(1, 8)}
    steady = 0
    for t in cat.all_titles():
        status, count = before[(t.platform, t.external_id)]
        new = t.episodes[count:]
        for e in new:
            assert e.released in week
            assert DayOfWeek.from_weekday(e.released.weekday()) in t.days
            assert not t.daily_plus
        numbers = [(e.season, e.no) for e in t.episodes]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        if status == t.status == WebtoonStatus.ONGOING and not t.daily_plus:
            # Running all week: one episode on each of its days, the newest dated in the week.
            steady += 1
            assert len(new) == len(t.days)
            assert t.last_date in week
        if status == t.status and status != WebtoonStatus.ONGOING:
            assert new == []
    assert steady > 50


def test_titles_not_running_get_no_episodes_and_statuses_change() -> None:
    cat = Catalogue(seed=5, titles=150)
    before = {(t.platform, t.external_id): (t.status, len(t.episodes)) for t in cat.all_titles()}
    cat.advance(1)
    for t in cat.all_titles():
        status, count = before[(t.platform, t.external_id)]
        if WebtoonStatus.ONGOING not in (status, t.status):
            assert len(t.episodes) == count
    cat.advance(6)
    after = {(t.platform, t.external_id): t.status for t in cat.all_titles()}
    changes = Counter((before[k][0], v) for k, v in after.items() if before[k][0] != v)
    assert changes[(WebtoonStatus.ONGOING, WebtoonStatus.COMPLETED)] > 0
    assert changes[(WebtoonStatus.ONGOING, WebtoonStatus.HIATUS)] > 0
    assert changes[(WebtoonStatus.HIATUS, WebtoonStatus.ONGOING)] > 0
    for t in cat.all_titles():
        if t.status == WebtoonStatus.COMPLETED:
            assert t.served_days == [] and t.paid_previews() == 0


def test_malformed_titles_and_episodes_are_left_out_of_expected() -> None:
    cat = Catalogue(seed=9, titles=120, malformed=3)
    expected = cat.expected()
    for platform in ("NAVER", "KAKAO", "KAKAOPAGE"):
        bad = expected["malformed"]["titles"][platform]
        assert len(bad) == 3
        assert not set(bad) & set(expected["platforms"][platform])
        kinds = {cat.title(platform, i).malformed for i in bad}
        assert kinds == {"not_json", "missing_title", "wrong_type"}
        broken = expected["malformed"]["episodes"][platform]
        assert sum(len(v) for v in broken.values()) == 3
        for title_id, numbers in broken.items():
            assert title_id in expected["platforms"][platform]
            for number in numbers:
                assert number not in expected["platforms"][platform][title_id]["episodes"]
    good = Catalogue(seed=9, titles=120).expected()
    assert expected["webtoons"] == good["webtoons"] - 9


def test_oversized_titles_are_expected_whole_and_listed_with_their_long_fields() -> None:
    cat = Catalogue(seed=9, titles=60, episodes=4, malformed=2, oversized=2)
    expected = cat.expected()
    for platform in ("NAVER", "KAKAO", "KAKAOPAGE"):
        listed = expected["oversized"][platform]
        assert len(listed) == 2
        for title_id, fields in listed.items():
            title = cat.title(platform, title_id)
            assert title.oversized and not title.malformed
            # Still a title (and episodes) the stores must end with.
            entry = expected["platforms"][platform][title_id]
            assert fields["synopsis_bytes"] >= OVERSIZED_SYNOPSIS_BYTES
            assert title.synopsis.endswith(" " + CUT_EMOJI)
            stored = title.synopsis.replace(CUT_EMOJI, "\ufffd")
            assert len(stored.encode("utf-8")) == fields["synopsis_bytes"]
            assert len(fields["author"]) == OVERSIZED_AUTHOR_CHARS
            assert fields["author"] in entry["authors"]
            assert fields["episode"] in entry["episodes"]
            long_episodes = [e for e in title.episodes if e.subtitle_prefix]
            assert len(long_episodes) == 1 and not long_episodes[0].malformed
            assert len(long_episodes[0].subtitle_prefix) == OVERSIZED_SUBTITLE_CHARS + 1
            # Text a platform would send: single spaces, no name separators.
            assert fields["author"] == " ".join(fields["author"].split())
            assert not set(",/&") & set(fields["author"] + long_episodes[0].subtitle_prefix)
            assert "\n" in title.synopsis and "  " not in title.synopsis
    # The same titles and episodes as without the option, malformed ones included.
    plain = Catalogue(seed=9, titles=60, episodes=4, malformed=2).expected()
    for platform in ("NAVER", "KAKAO", "KAKAOPAGE"):
        assert expected["platforms"][platform].keys() == plain["platforms"][platform].keys()
        for title_id, entry in plain["platforms"][platform].items():
            assert expected["platforms"][platform][title_id]["episodes"] == entry["episodes"]
    assert expected["malformed"] == plain["malformed"]
    assert expected["webtoons"] == plain["webtoons"]
    assert plain["oversized"] == {"NAVER": {}, "KAKAO": {}, "KAKAOPAGE": {}}
    again = Catalogue(seed=9, titles=60, episodes=4, malformed=2, oversized=2)
    assert again.expected() == expected


def test_the_card_catchphrase_is_the_synopsis_first_two_lines() -> None:
    cat = Catalogue(seed=9, titles=30, oversized=1)
    for title in cat.all_titles():
        if title.oversized:
            assert title.catchphrase == "\n".join(title.synopsis.split("\n")[:2])
            assert len(title.catchphrase) < 500
        else:
            assert title.catchphrase == title.synopsis


@pytest.mark.parametrize("kwargs", [{"titles": -1}, {"episodes": 0}, {"malformed": -2},
                                    {"oversized": -1}])
def test_bad_arguments_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Catalogue(**kwargs)


def test_advance_refuses_going_back() -> None:
    with pytest.raises(ValueError):
        Catalogue().advance(-1)


def test_titles_shorter_than_their_preview_window_serve_every_episode():
    # Seed 13 has an ongoing Naver title with one episode and a 3-episode preview window.
    from crawler.simulator import naver

    catalogue = Catalogue(seed=13, titles=120, episodes=3)
    short = [t for t in catalogue.titles_of("NAVER")
             if t.status.value == "ONGOING" and len(t.episodes) < t.preview]
    assert short, "the scenario needs a title shorter than its preview window"
    for title in short:
        status, payload = naver.article_list(catalogue, "http://sim", title.external_id, 1, "ASC")
        assert status == 200
        served = payload["articleList"] + payload["chargeFolderArticleList"]
        assert sorted(int(a["no"]) for a in served) == [e.no for e in title.episodes]
