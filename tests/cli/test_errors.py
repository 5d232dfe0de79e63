"""The error contract: one line on stderr, a documented exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickvault import errors
from tickvault.cli import ExitCode, app
from tickvault.cli._errors import exit_code_for, one_line, shell_spelling

from ._util import RunCli, RunProc, assert_one_line_error

COMMANDS = ["demo", "import", "bars", "indicators", "screen", "status", "validate", "quarantine", "verify"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(cli: RunCli, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert "Usage" in result.stdout


def test_root_help_lists_every_command_and_the_exit_codes(cli: RunCli) -> None:
    for args in (["--help"], []):
        result = cli(*args)
        assert result.exit_code == 0
        for command in COMMANDS:
            assert command in result.stdout
        assert "Exit codes" in result.stdout


def test_commands_are_listed_demo_first() -> None:
    names = [c.name for c in app.registered_commands]
    assert names[0] == "demo"
    assert [n for n in names if n in COMMANDS] == COMMANDS  # later issues add commands after these


def test_version(cli: RunCli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("tickvault ")


@pytest.mark.parametrize(
    "args",
    [
        ["bars", "../../etc", "--timeframe", "1d"],
        ["validate", "../../etc", "--timeframe", "1d"],
        ["quarantine", "../../etc", "--timeframe", "1d"],
        ["status", "../../etc"],
    ],
)
def test_hostile_symbol_is_rejected_before_touching_the_vault(cli: RunCli, home: Path, args: list[str]) -> None:
    home.mkdir()
    result = cli(*args, "--home", home)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "invalid symbol", "../../etc")
    assert result.stdout == ""
    assert list(home.iterdir()) == []  # nothing was created, not even the store's files


def test_hostile_symbol_on_import_writes_nothing(cli: RunCli, home: Path, shared_data: Path) -> None:
    src = shared_data / "ohlcv" / "Stock.Indicators" / "default.csv"
    result = cli("import", src, "--symbol", "../../etc", "--timeframe", "1d", "--home", home)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "invalid symbol")
    assert not home.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bars", "AAPL"], "Missing option '--timeframe'"),
        (["bars", "AAPL", "-t", "1d", "--adjust", "sideways"], "'sideways' is not one of"),
        (["bars", "AAPL", "-t", "1d", "--format", "xml"], "'xml' is not one of"),
        (["bars", "AAPL", "-t", "1q"], "invalid timeframe"),
        (["bars", "AAPL", "-t", "1d", "--format", "parquet"], "needs --output"),
        (["bars", "AAPL", "-t", "1d", "--output", "x.csv"], "--output needs --format"),
        (["bars", "AAPL", "-t", "1d", "--format", "csv", "--output", "/nonexistent-dir/x.csv"], "does not exist"),
        (["import", "/nonexistent/file.csv", "-s", "AAPL", "-t", "1d"], "does not exist"),
        (["no-such-command"], "No such command"),
        (["demo", "--end", "yesterday-ish"], "--end must be a date"),
    ],
)
def test_usage_errors_are_one_line_exit_2(cli: RunCli, home: Path, args: list[str], fragment: str) -> None:
    result = cli(*args, "--home", home) if args[0] != "no-such-command" else cli(*args)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert_one_line_error(result.stderr, fragment)


@pytest.mark.parametrize("command", [["bars", "AAPL", "-t", "1d"], ["status"], ["validate", "AAPL", "-t", "1d"],
                                     ["quarantine", "AAPL", "-t", "1d"], ["verify"]])
def test_readers_refuse_a_missing_vault_instead_of_creating_one(cli: RunCli, tmp_path: Path,
                                                                command: list[str]) -> None:
    typo = tmp_path / "no-such-vault"
    result = cli(*command, "--home", typo)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "no vault at", str(typo))
    assert not typo.exists()


def test_global_and_command_home_both_work(cli: RunCli, tmp_path: Path) -> None:
    typo = tmp_path / "nope"
    before = cli("--home", typo, "status")
    after = cli("status", "--home", typo)
    assert before.exit_code == after.exit_code == ExitCode.USAGE
    assert str(typo) in before.stderr
    assert str(typo) in after.stderr


def test_home_defaults_to_tickvault_home(cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKVAULT_HOME", str(tmp_path / "from-env"))
    result = cli("status")
    assert result.exit_code == ExitCode.USAGE
    assert str(tmp_path / "from-env") in result.stderr


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.InvalidSymbol("x"), ExitCode.USAGE),
        (errors.FileFormatError("bad", path="f.csv", line=3), ExitCode.USAGE),
        (errors.InvalidRange("x"), ExitCode.USAGE),
        (errors.ConfigError("x"), ExitCode.USAGE),
        (errors.MissingData("x"), ExitCode.DATA),
        (errors.QualityError("x"), ExitCode.DATA),
        (errors.StoreLocked("x"), ExitCode.STORAGE),
        (errors.CorruptData("x"), ExitCode.STORAGE),
        (PermissionError(13, "Permission denied", "/x"), ExitCode.STORAGE),
        (errors.ProviderUnavailable("x"), ExitCode.PROVIDER),
        (errors.AuthenticationFailed("x"), ExitCode.PROVIDER),
        (errors.TickvaultError("x"), ExitCode.FAILURE),
    ],
)
def test_exit_code_per_error_family(exc: BaseException, code: ExitCode) -> None:
    assert exit_code_for(exc) == code


def test_one_line_collapses_newlines_and_caps_length() -> None:
    assert one_line("a\nb\r\n  c") == "a b c"
    assert len(one_line("x" * 5000)) == 1000


def test_os_error_on_the_vault_folder_is_one_line_exit_4(cli: RunCli, tmp_path: Path, shared_data: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    src = shared_data / "ohlcv" / "Stock.Indicators" / "default.csv"
    result = cli("import", src, "--symbol", "SPY", "--timeframe", "1d", "--home", blocker / "vault")
    assert result.exit_code == ExitCode.STORAGE, result.output
    assert_one_line_error(result.stderr)


def test_real_entry_point_hostile_symbol(run_bin: RunProc, home: Path) -> None:
    home.mkdir()
    proc = run_bin("bars", "../../etc", "--timeframe", "1d", "--home", home)
    assert proc.exit_code == ExitCode.USAGE
    assert_one_line_error(proc.stderr, "invalid symbol", "../../etc")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("library", "shell"),
    [
        ("SPY 1d: data missing; use fetch='never' for what is stored", "use --fetch never for what is stored"),
        ("cannot tell the symbol from the file name; pass symbol=", "pass --symbol"),
        ("cannot infer the timeframe from the timestamps; pass timeframe= (x)", "pass --timeframe (x)"),
        ("times are US/Eastern: pass tz='America/New_York'", "pass --tz America/New_York"),
        ("context stays as it is (symbol=SPY, timeframe=1d)", "(symbol=SPY, timeframe=1d)"),
    ],
)
def test_library_advice_is_spelled_as_options(library: str, shell: str) -> None:
    assert shell in shell_spelling(library)


def test_import_without_a_symbol_says_which_option(cli: RunCli, home: Path, shared_data: Path) -> None:
    src = shared_data / "ohlcv" / "Stock.Indicators" / "default.csv"
    result = cli("import", src, "--timeframe", "1d", "--home", home)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "default.csv", "--symbol")


def test_paths_with_brackets_print_verbatim(cli: RunCli, tmp_path: Path) -> None:
    odd = tmp_path / "v[bold]x"
    odd.mkdir()
    result = cli("status", "--home", odd)
    assert result.exit_code == 0
    assert "v[bold]x" in result.stdout


def test_public_names_and_exit_codes_are_pinned() -> None:
    import tickvault.cli

    assert sorted(tickvault.cli.__all__) == ["ExitCode", "app", "main"]
    assert {c.name: c.value for c in ExitCode} == {"OK": 0, "FAILURE": 1, "USAGE": 2, "DATA": 3, "STORAGE": 4,
                                                  "PROVIDER": 5}


@pytest.mark.parametrize("command", [["status"], ["demo"]])
def test_bad_configuration_is_one_line_exit_2(cli: RunCli, home: Path, monkeypatch: pytest.MonkeyPatch,
                                              command: list[str]) -> None:
    home.mkdir()
    monkeypatch.setenv("TICKVAULT_LOCK_TIMEOUT", "soon")
    result = cli(*command, "--home", home)
    assert result.exit_code == ExitCode.USAGE
    assert_one_line_error(result.stderr, "invalid configuration", "lock_timeout")
    assert list(home.iterdir()) == []
