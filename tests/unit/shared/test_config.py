from pathlib import Path

import pytest

from shared.config import SETTINGS, ConfigError, load_config, markdown_table
from shared.stores.mariadb import parse_url

README = Path(__file__).resolve().parents[3] / "README.md"


def test_dev_is_the_default_profile_and_points_at_local_services():
    config = load_config(environ={})
    assert config.profile == "dev"
    assert parse_url(config.mariadb_url).database == "toonpick"
    assert "retryWrites=false" in config.mongo_url
    assert config.redis_url == ""  # no Redis: single-process crawls
    assert config.naver_base_url == "https://comic.naver.com"


def test_test_profile_uses_its_own_databases():
    config = load_config(environ={"TOONPICK_PROFILE": "test"})
    assert parse_url(config.mariadb_url).database == "toonpick_test"
    assert "/toonpick_test?" in config.mongo_url


def test_environment_overrides_and_types():
    config = load_config(environ={
        "TOONPICK_CRAWL_CONCURRENCY": "4",
        "TOONPICK_CRAWL_HOST_RATE": "2.5",
        "REDIS_URL": "redis://example:6379/1",
    })
    assert config.crawl_concurrency == 4
    assert config.crawl_host_rate == 2.5
    assert config.redis_url == "redis://example:6379/1"


def test_prod_requires_store_urls():
    with pytest.raises(ConfigError, match="TOONPICK_MARIADB_URL"):
        load_config(environ={"TOONPICK_PROFILE": "prod"})


def test_malformed_values_are_clear_errors():
    with pytest.raises(ConfigError, match="TOONPICK_CRAWL_CONCURRENCY=many: must be an integer"):
        load_config(environ={"TOONPICK_CRAWL_CONCURRENCY": "many"})
    with pytest.raises(ConfigError, match="TOONPICK_PROFILE"):
        load_config(environ={"TOONPICK_PROFILE": "staging"})


def test_env_names_follow_the_prefix_convention():
    for setting in SETTINGS:
        assert setting.env.startswith(("TOONPICK_", "AWS_")) or setting.env == "REDIS_URL"


def test_readme_documents_every_setting():
    assert markdown_table() in README.read_text(), "regenerate with `toonpick config --markdown`"
