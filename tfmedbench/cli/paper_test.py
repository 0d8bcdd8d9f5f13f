"""`tfmedbench paper`: the bundled numbers printed per task and per table."""

from tfmedbench.testing import run_cli


def test_paper_is_a_command(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "paper" in out


def test_one_task_lists_every_initialization_and_the_differing_prints(capsys):
    code, out, _ = run_cli(["paper", "--task", "dxc14"], capsys)
    assert code == 0
    assert "Hosseinzadeh Taher" in out and "DXC14 (AUC, %" in out
    random = next(line for line in out.splitlines() if line.startswith("Scratch / Random"))
    assert "random" in random and "80.31 ± 0.10" in random and "2,4,7,8" in random
    assert "68.2 ± 5.07" in random  # convergence epochs (Tables 7, 8)
    assert "random: Table 7 prints 80.40 ± 0.05 (canonical: Table 2" in out
    assert sum(1 for line in out.splitlines() if "±" in line) == 1 + 19 + 1  # title, inits, variant
    assert "TXC" not in out


def test_one_table_as_printed(capsys):
    code, out, _ = run_cli(["paper", "--table", "5"], capsys)
    assert code == 0 and "Table 5:" in out
    header = next(line for line in out.splitlines() if line.startswith("initialization"))
    for task in ("DXC14", "DXC5", "TXC", "ECC", "PXS", "LXS", "VFS"):
        assert task in header
    rows = [line for line in out.splitlines() if "±" in line]
    assert len(rows) == 15  # Supervised + 14 self-supervised
    assert any(
        line.startswith("Barlow Twins") and "barlow" in line and "70.42 ± 0.15" in line
        for line in rows
    )
    code, out, _ = run_cli(["paper", "--table", "6", "--task", "vfs"], capsys)
    assert code == 0 and "100.0 ± 0.0 ep" in out and "PXS" not in out


def test_bad_task_or_table_is_one_line(capsys):
    code, _, err = run_cli(["paper", "--task", "nope"], capsys)
    assert (
        code == 2
        and err.strip().startswith("error: unknown task 'NOPE'")
        and len(err.strip().splitlines()) == 1
    )
    code, _, err = run_cli(["paper", "--table", "11"], capsys)
    assert code == 2 and "tables are 2-8" in err
