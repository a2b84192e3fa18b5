"""models/cli_args.py: one declaration of the options the window and the headless commands share."""
from __future__ import annotations

import subprocess
import sys

import pytest
from clipscape.models.cli_args import build_parser, version


def _options(parser) -> dict[str, tuple]:
    """option string -> (default, choices, type, help) of every option of ``parser``."""
    return {s: (a.default, a.choices, a.type, a.help) for a in parser._actions for s in a.option_strings}


def test_window_and_headless_share_the_model_options():
    from clipscape.app.launch import gui_parser

    window = _options(gui_parser())
    sub = build_parser()._subparsers._group_actions[0].choices
    for command, parser in sub.items():
        headless = _options(parser)
        for option in ("--model", "--pretrained", "--device", "--batch-size"):
            assert window[option] == headless[option], (command, option)


@pytest.mark.parametrize("argv", [["--version"], ["encode"], ["--batch-size", "0"],
                                  ["search", "--help"], ["search", "F", "x", "--top", "0"]])
def test_version_help_and_usage_errors_never_import_torch(argv):
    code = (f"import sys\nsys.argv = ['clipscape', *{argv!r}]\n"
            "from clipscape.app.launch import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "heavy = sorted(m for m in ('torch', 'open_clip', 'numpy', 'PySide6') if m in sys.modules)\n"
            "print(code, heavy, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.endswith(" []"), proc.stderr


def test_version_prints_the_installed_version(capsys):
    from clipscape.app.launch import main

    for argv in (["--version"], ["--batch-size", "4", "--version"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert capsys.readouterr().out == f"clipscape {version()}\n"
    from importlib.metadata import version as installed

    assert version() == installed("clipscape")


def test_window_batch_size_is_checked_by_the_parser(capsys):
    from clipscape.app.launch import main

    with pytest.raises(SystemExit) as exit_:
        main(["--batch-size", "0"])
    assert exit_.value.code == 2
    assert "--batch-size: must be at least 1" in capsys.readouterr().err
