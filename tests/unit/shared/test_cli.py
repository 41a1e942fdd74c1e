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
