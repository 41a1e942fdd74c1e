from shared.cli import main
from shared.config import markdown_table


def test_config_markdown_prints_the_settings_table(capsys):
    assert main(["config", "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == markdown_table()


def test_config_hides_secrets(capsys, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t" not in out and "aws_secret_access_key = ***" in out


def test_crawl_with_bad_arguments_exits_2_with_a_message(capsys):
    assert main(["crawl", "lezhin"]) == 2
    assert "unknown spider 'lezhin'" in capsys.readouterr().err
    assert main(["crawl", "naver", "--mode", "sometimes"]) == 2
    assert "unknown mode 'sometimes'" in capsys.readouterr().err


def test_scheduler_and_task_reject_bad_arguments_with_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    assert main(["scheduler", "--now", "2025-03-01T10:00"]) == 2
    assert "--now and --since go with --once" in capsys.readouterr().err
    assert main(["scheduler", "--once", "--now", "tomorrow"]) == 2
    assert "'tomorrow' is not an ISO date-time" in capsys.readouterr().err
    assert main(["scheduler", "--once", "--since", "2025-03-01T10:00",
                 "--now", "2025-03-01T09:00"]) == 2
    assert "--since must be before --now" in capsys.readouterr().err
    assert main(["task", "run", "WEBTOON_ALL_CRAWL", "--params", "{platforms"]) == 2
    assert "--params is not JSON" in capsys.readouterr().err


def test_worker_and_scheduler_need_redis(capsys, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "")
    assert main(["worker", "--burst"]) == 2
    assert "toonpick worker: set REDIS_URL" in capsys.readouterr().err
    assert main(["scheduler", "--once"]) == 2
    assert "toonpick scheduler: set REDIS_URL" in capsys.readouterr().err


def test_spider_node_refuses_an_unknown_spider(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["spider-node", "lezhin"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'lezhin'" in capsys.readouterr().err
