"""`vae-client` as a person uses it: defaults in --help, where images go, --version, pipes,
and URLs without a scheme."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.helpers import ROOT
from vae_client.cli import main, parser


@pytest.mark.parametrize(
    ("command", "shown"),
    [("sample", ["(default: 16)", "(default: 4)"]), ("interpolate", ["(default: 8)"])],
)
def test_every_command_help_shows_its_defaults(capsys, command, shown):
    with pytest.raises(SystemExit):
        parser().parse_args([command, "--help"])
    out = capsys.readouterr().out
    assert all(text in out for text in shown), out


class Pipe(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


class Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def test_without_output_a_piped_stdout_gets_the_png(app_client: TestClient, monkeypatch, capsys):
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", Pipe(raw))
    assert main(["sample", "-n", "1", "--seed", "2", "--scale", "1"], app_client) == 0
    with Image.open(io.BytesIO(raw.getvalue())) as image:
        assert image.size == (28, 28)
    assert "stdout" in capsys.readouterr().err


def test_without_output_on_a_terminal_it_says_where_it_wrote(
    app_client: TestClient, monkeypatch, capsys, tmp_path: Path
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdout", Terminal(io.BytesIO()))
    assert main(["sample", "-n", "1", "--seed", "2"], app_client) == 0
    assert (tmp_path / "samples.png").is_file()
    assert str(tmp_path / "samples.png") in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("vae-client ")


def test_a_url_without_a_scheme_says_add_http(capsys):
    assert main(["--url", "localhost:8000", "info"]) == 2
    assert "add http://" in capsys.readouterr().err


def test_a_closed_pipe_is_not_an_error(tiny_model_file: Path):
    """`vae-client info | head -1`: no 'Broken pipe' message, exit status 0."""
    script = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from app.main import create_app\n"
        "from app.settings import Settings\n"
        "from vae_client.cli import main\n"
        f"settings = Settings(model_path={str(tiny_model_file)!r}, access_log=False)\n"
        "with TestClient(create_app(settings)) as http:\n"
        "    sys.exit(main(['info'], http))\n"
    )
    reader = "pass"  # like `head` done early: gone before the writer (seconds to start) writes
    with subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as writer:
        head = subprocess.run([sys.executable, "-c", reader], stdin=writer.stdout, timeout=60)
        writer.stdout.close()
        err = writer.stderr.read().decode()
        assert writer.wait(timeout=60) == 0, err
    assert head.returncode == 0
    assert "Broken pipe" not in err and "BrokenPipeError" not in err
