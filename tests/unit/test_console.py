import sys

import pytest

from sora_relay_tools import console


def test_missing_command_libraries_are_named_with_the_extra_to_install(monkeypatch, capsys) -> None:
    for name in [
        name for name in sys.modules if name == "sora_relay_tools.cli" or name.startswith("sora_relay_tools.cli.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "click", None)
    with pytest.raises(SystemExit) as exit_info:
        console.main()
    assert exit_info.value.code == 2
    assert "pip install 'sora-relay[cli]'" in capsys.readouterr().err
