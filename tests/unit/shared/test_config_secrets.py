"""Secrets are data, not names: settings flagged ``secret=True`` and every URL's password
never reach what ``toonpick config`` prints (in-process and as the installed command),
while the values that help an operator still do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import main
from shared.config import (
    MASK,
    SETTINGS,
    load_config,
    mask_url,
    redact,
    redacted_config,
    setting,
)

REPO = Path(__file__).resolve().parents[3]

# One distinct string per secret, so a leak says which one leaked.
MARIADB_PASSWORD = "MariaPw-4f1c"
REDIS_PASSWORD = "RedisPw-9b2e"
MONGO_PASSWORD = "MongoPw-77aa"
MONGO_SESSION_TOKEN = "MongoSession-31d0"
AWS_SECRET = "AwsSecret-wJalrXUtnFEMI"
WEBHOOK_PATH_TOKEN = "HookPathTok-X9Y8Z7"
WEBHOOK_QUERY_TOKEN = "HookQueryTok-5e6f"
SECRETS = (MARIADB_PASSWORD, REDIS_PASSWORD, MONGO_PASSWORD, MONGO_SESSION_TOKEN, AWS_SECRET,
           WEBHOOK_PATH_TOKEN, WEBHOOK_QUERY_TOKEN)

SECRET_ENV = {
    "TOONPICK_PROFILE": "test",
    "TOONPICK_MARIADB_URL": f"mysql://toonpick_ops:{MARIADB_PASSWORD}@db.internal:3306/"
                            "toonpick_live?ssl=required",
    "REDIS_URL": f"redis://:{REDIS_PASSWORD}@cache.internal:6380/3",
    "TOONPICK_MONGO_URL": f"mongodb://raw_writer:{MONGO_PASSWORD}@docs-1.internal:27017,"
                          "docs-2.internal:27017/toonpick_raw?authSource=admin&"
                          f"authMechanismProperties=AWS_SESSION_TOKEN:{MONGO_SESSION_TOKEN}",
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "AWS_ACCESS_KEY_ID": "AKIAVISIBLEID",
    "TOONPICK_ALERT_WEBHOOK_URL": f"https://hooks.slack.example/services/T000/B000/"
                                  f"{WEBHOOK_PATH_TOKEN}?token={WEBHOOK_QUERY_TOKEN}",
    "TOONPICK_CRAWL_CONCURRENCY": "7",
}

# What must still be shown: who connects where, and the ordinary settings.
VISIBLE = ("mysql://toonpick_ops:***@db.internal:3306/toonpick_live?ssl=required",
           "redis://:***@cache.internal:6380/3",
           "mongodb://raw_writer:***@docs-1.internal:27017,docs-2.internal:27017/toonpick_raw"
           "?authSource=admin&authMechanismProperties=***",
           "aws_secret_access_key = ***",
           "aws_access_key_id = AKIAVISIBLEID",
           "alert_webhook_url = https://hooks.slack.example/***",
           "crawl_concurrency = 7",
           "profile = test")


def assert_no_secret(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"printed in clear: {leaked}"


@pytest.mark.parametrize(("url", "shown"), [
    ("mysql://toonpick:pw@127.0.0.1:3306/toonpick?ssl=disabled",
     "mysql://toonpick:***@127.0.0.1:3306/toonpick?ssl=disabled"),
    ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("rediss://default:pw@cache:6380/0?password=pw2", "rediss://default:***@cache:6380/0?password=***"),
    ("mongodb://u:p%40ss@h1:1,h2:2/db?retryWrites=false", "mongodb://u:***@h1:1,h2:2/db?retryWrites=false"),
    ("https://api.example/x?a=1&token=abc&api_key=k#top", "https://api.example/x?a=1&token=***&api_key=***#top"),
    ("https://b.s3.example/o?X-Amz-Credential=c&X-Amz-Signature=s&X-Amz-Security-Token=t",
     "https://b.s3.example/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***"),
    # Unencoded characters the stores' own parsers misread: still masked, not half-shown.
    ("mysql://u:p/w?x@h/db", "mysql://u:***@h/db"),
    ("mysql://u:p w@h/db", "mysql://u:***@h/db"),
    ("mysql://u:p@ss@h/db", "mysql://u:***@h/db"),
    # Nothing to hide: unchanged.
    ("mysql://root@h/db", "mysql://root@h/db"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("s3://toonpick-images/", "s3://toonpick-images/"),
    ("data/images", "data/images"),
    ("", ""),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown


def test_mask_url_masks_every_url_inside_a_message():
    message = ("'mysql://u:pw1@h/db': unreachable; fell back to redis://:pw2@r:6379/0 "
               "and \"mongodb://m:pw3@h/x\"")
    assert mask_url(message) == ("'mysql://u:***@h/db': unreachable; fell back to "
                                 "redis://:***@r:6379/0 and \"mongodb://m:***@h/x\"")


def test_the_settings_that_are_secrets_say_so():
    secret = {s.name for s in SETTINGS if s.secret}
    assert {"aws_secret_access_key", "alert_webhook_url"} <= secret
    # A setting added later whose name says what it holds cannot forget the flag.
    for s in SETTINGS:
        if any(word in s.name for word in ("secret", "password", "token", "webhook")):
            assert s.secret, f"{s.name} holds a credential: declare it secret=True"


def test_redact_a_secret():
    aws = setting("aws_secret_access_key")
    assert redact(aws, AWS_SECRET) == MASK
    assert redact(aws, "") == ""  # "not set" shows as not set
    hook = setting("alert_webhook_url")
    # A webhook's path is its token: only where it points is shown.
    assert redact(hook, SECRET_ENV["TOONPICK_ALERT_WEBHOOK_URL"]) == "https://hooks.slack.example/***"
    assert redact(hook, "not-a-url-" + WEBHOOK_PATH_TOKEN) == MASK


def test_redact_other_values():
    assert redact(setting("mariadb_url"), "mysql://u:pw@h/db") == "mysql://u:***@h/db"
    assert redact(setting("naver_base_url"), "https://comic.naver.com") == "https://comic.naver.com"
    assert redact(setting("crawl_concurrency"), 16) == 16
    assert redact(setting("sqs_enabled"), False) is False


def test_redacted_config_covers_every_setting_and_hides_unknown_names():
    config = load_config(environ=SECRET_ENV)
    shown = redacted_config(config)
    assert set(shown) == set(config)
    assert_no_secret(repr(shown))
    assert shown["crawl_concurrency"] == 7
    assert redacted_config({"something_new": "value"}) == {"something_new": MASK}


def test_toonpick_config_prints_no_secret(capsys, monkeypatch):
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["config"]) == 0
    captured = capsys.readouterr()
    assert_no_secret(captured.out + captured.err)
    for text in VISIBLE:
        assert text in captured.out
    # Every setting is still listed, secrets included (as ***).
    assert len(captured.out.splitlines()) == len(SETTINGS)


def _toonpick(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    # The installed console script, as an operator runs it (else its entry point).
    script = Path(sys.executable).with_name("toonpick")
    command = ([str(script)] if script.exists() else
               [sys.executable, "-c", "import sys; from shared.cli import main; sys.exit(main())"])
    command += args
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TOONPICK_", "AWS_"))}
    base.pop("REDIS_URL", None)
    return subprocess.run(command, cwd=REPO, env={**base, **env}, capture_output=True,
                          text=True, timeout=60)


def test_toonpick_config_as_a_command_prints_no_secret():
    done = _toonpick(["config"], SECRET_ENV)
    assert done.returncode == 0, done.stderr
    assert_no_secret(done.stdout + done.stderr)
    for text in VISIBLE:
        assert text in done.stdout


@pytest.mark.parametrize(("name", "value"), [
    # Refused by the setting's rule: the error names the variable, never the value's secret.
    ("TOONPICK_ALERT_WEBHOOK_URL", f"hooks.slack.example/services/T000/B000/{WEBHOOK_PATH_TOKEN}"),
    ("TOONPICK_MARIADB_URL", f"mysql://toonpick:{MARIADB_PASSWORD}@db.internal/bad-name"),
    ("REDIS_URL", f"redis://:{REDIS_PASSWORD}@cache.internal:6379/not-a-number"),
])
def test_a_refused_secret_value_is_not_echoed(name, value):
    done = _toonpick(["config"], {**SECRET_ENV, name: value})
    assert done.returncode != 0
    assert name in done.stderr
    assert_no_secret(done.stdout + done.stderr)


def test_a_secret_value_is_itself_when_used_and_masked_when_repr():
    import json
    import pprint

    config = load_config(environ=SECRET_ENV)
    secret = config.aws_secret_access_key
    assert secret == AWS_SECRET and str(secret) == AWS_SECRET and f"{secret}" == AWS_SECRET
    assert json.loads(json.dumps({"k": secret})) == {"k": AWS_SECRET}
    assert repr(secret) == "'***'"
    # A URL that carries a password: the URL itself when used, masked when repr'd.
    assert config.mariadb_url == SECRET_ENV["TOONPICK_MARIADB_URL"]
    assert repr(config.mariadb_url) == repr(mask_url(SECRET_ENV["TOONPICK_MARIADB_URL"]))
    assert_no_secret(pprint.pformat(dict(config)))
    assert repr(load_config(environ={**SECRET_ENV, "AWS_SECRET_ACCESS_KEY": ""})
                .aws_secret_access_key) == "''"


def test_scrapy_overridden_settings_log_line_hides_the_aws_secret():
    # Every spider node logs this line at start-up (scrapy.crawler: "Overridden
    # settings"); Scrapy's AWS_SECRET_ACCESS_KEY is in it whenever it is set.
    probe = ("import pprint\n"
             "from scrapy.settings import overridden_settings\n"
             "from scrapy.utils.project import get_project_settings\n"
             "settings = get_project_settings()\n"
             "print(pprint.pformat(dict(overridden_settings(settings))))\n"
             "print('in use:', settings['AWS_SECRET_ACCESS_KEY'] == " + repr(AWS_SECRET) + ")\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **SECRET_ENV})
    assert done.returncode == 0, done.stderr
    assert "'AWS_SECRET_ACCESS_KEY': '***'" in done.stdout
    assert "in use: True" in done.stdout
    assert_no_secret(done.stdout + done.stderr)
