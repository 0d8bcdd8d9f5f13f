"""The click objects the tfmedbench CLI mounts."""

from click.testing import CliRunner

from weights_converter import cli, registry
from weights_converter.testing import writers


def test_weights_list_shows_all_initializations():
    result = CliRunner().invoke(cli.weights, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for record in registry.RECORDS:
        assert any(line.startswith(f"{record.name} ") for line in lines), record.name
    # each initialization with its source and citation
    assert sum(line.strip().startswith("cite:") for line in lines) >= len(registry.RECORDS)
    assert "21 pre-trained initializations + random" in result.output
    assert "barlow-twins" in result.output


def test_weights_fetch_random_needs_nothing():
    result = CliRunner().invoke(cli.weights, ["fetch", "random"])
    assert result.exit_code == 0 and "nothing to fetch" in result.output


def test_convert_prints_accounting_and_parity(reference, tmp_path):
    src = str(tmp_path / "PIRL.pth")
    writers.write_pycontrast(reference, src, pirl=True)
    out = str(tmp_path / "pirl.weights.h5")
    result = CliRunner().invoke(
        cli.convert, [src, "--format", "pycontrast", "--out", out, "--name", "pirl",
                      "--depths", "2,1,2,1", "--width", "8"])
    assert result.exit_code == 0, result.output
    assert "PIRL jigsaw head (head_jig)" in result.output
    assert "every one assigned exactly once" in result.output
    assert "PASS" in result.output and "parity" in result.output


def test_convert_with_wrong_format_fails(reference, tmp_path):
    src = str(tmp_path / "swav.pth.tar")
    writers.write_swav(reference, src)
    result = CliRunner().invoke(cli.convert, [src, "--format", "moco", "--out", str(tmp_path / "x.weights.h5"),
                                              "--depths", "2,1,2,1", "--width", "8"])
    assert result.exit_code != 0 and "state_dict" in str(result.exception)
