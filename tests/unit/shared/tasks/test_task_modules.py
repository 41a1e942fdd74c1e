"""import_task_modules: a module the setting names but that does not exist is a setting's
error (one line from the command); a module whose own imports fail keeps its traceback."""

import sys

import pytest

from shared.config import ConfigError
from shared.tasks.types import import_task_modules


def test_a_missing_task_module_is_a_config_error():
    with pytest.raises(ConfigError, match=r"task module 'nope\.tasks' cannot be imported.*"
                                          r"TOONPICK_TASK_MODULES"):
        import_task_modules(["nope.tasks"])
    with pytest.raises(ConfigError, match="'crawler.nope'"):
        import_task_modules(["crawler.nope"])


def test_a_task_module_failing_on_its_own_import_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "broken_task_module.py").write_text("import not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ModuleNotFoundError, match="not_installed_anywhere"):
            import_task_modules(["broken_task_module"])
    finally:
        sys.modules.pop("broken_task_module", None)
