import pytest

from crawler.parsing.common import (
    ParseError,
    dotted_date,
    identifier,
    integer,
    iso_date,
    load_json,
    merge_roles,
    split_names,
    text,
    with_image_extension,
)


def test_load_json_rejects_bad_json_and_non_objects():
    with pytest.raises(ParseError) as bad:
        load_json(b"{not json")
    assert bad.value.reason == "bad_json"
    with pytest.raises(ParseError) as listed:
        load_json(b"[1, 2]")
    assert listed.value.reason == "unknown_shape"
    assert load_json('{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("value, expected", [(52, 52), ("52", 52), (" 7 ", 7), (3.0, 3)])
def test_integer_accepts_numbers_and_digit_strings(value, expected):
    assert integer({"no": value}, "no") == expected


@pytest.mark.parametrize("value", ["abc", True, 2.5, {"n": 1}, [1]])
def test_integer_rejects_wrong_types(value):
    with pytest.raises(ParseError) as err:
        integer({"no": value}, "no")
    assert err.value.reason == "wrong_type:no"


def test_integer_missing_with_and_without_default():
    assert integer({}, "seasonNo", default=1) == 1
    with pytest.raises(ParseError) as err:
        integer({}, "no")
    assert err.value.reason == "missing_field:no"


def test_identifier_and_text_types():
    assert identifier({"id": 2507}, "id") == "2507"
    for bad in ({"x": 1}, ["1"], "1 2", True):
        with pytest.raises(ParseError) as err:
            identifier({"id": bad}, "id")
        assert err.value.reason == "wrong_type:id"
    with pytest.raises(ParseError) as missing:
        text({"title": "  "}, "title", required=True)
    assert missing.value.reason == "missing_field:title"
    with pytest.raises(ParseError) as wrong:
        text({"title": ["a"]}, "title")
    assert wrong.value.reason == "wrong_type:title"


def test_dates():
    assert dotted_date("24.12.01") == "2024-12-01"
    assert dotted_date("24.13.01") is None
    assert dotted_date("3일 후 무료") is None
    assert iso_date("2024-05-01T00:00:00+09:00") == "2024-05-01"
    assert iso_date("2024-05-01") == "2024-05-01"
    assert iso_date("yesterday") is None
    assert iso_date(None) is None


def test_names_roles_and_images():
    assert split_names("A / B") == ["A", "B"]
    assert split_names("a,b,a") == ["a", "b"]
    assert merge_roles({"WRITER", "ARTIST"}) == "BOTH"
    assert merge_roles({"ARTIST"}) == "ARTIST"
    assert merge_roles({"ORIGINAL"}) == "ORIGINAL"
    assert with_image_extension("https://cdn/x/abc") == "https://cdn/x/abc.png"
    assert with_image_extension("https://cdn/x/abc.webp") == "https://cdn/x/abc.webp"
    assert with_image_extension(None) is None
