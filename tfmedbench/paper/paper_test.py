"""The bundled published numbers: identical to the transcription, names mapped, canonical rule."""

import csv
import io
import os
import pathlib

import pytest

from tfmedbench import paper
from weights_converter.registry import BY_NAME


def _shared_csv():
    env = os.environ.get("TFMEDBENCH_SHARED_PAPER")
    root = (
        pathlib.Path(env)
        if env
        else pathlib.Path(__file__).resolve().parents[3] / "shared" / "paper"
    )
    return root / "published_results.csv"


def test_bundled_file_equals_the_shared_transcription_row_for_row():
    shared = _shared_csv()
    if not shared.is_file():
        pytest.skip(f"shared transcription not found at {shared} (set TFMEDBENCH_SHARED_PAPER)")
    with open(shared, newline="", encoding="utf-8") as fh:
        expected = list(csv.reader(fh))
    bundled = list(csv.reader(io.StringIO(paper.csv_text())))
    assert len(bundled) == len(expected) == 248
    for i, (a, b) in enumerate(zip(bundled, expected)):
        assert a == b, f"row {i + 1}: {a} != {b}"


def test_every_printed_name_maps_to_a_registry_name():
    rows = paper.load_rows()
    printed = {r.initialization for r in rows}
    assert printed <= set(paper.INITIALIZATIONS)
    assert set(paper.INITIALIZATIONS.values()) <= set(BY_NAME)
    # every initialization of the registry is in the paper (the 21 of its benchmark)
    assert {r.weights for r in rows} == set(BY_NAME)
    assert {r.task for r in rows} == set(paper.TASKS) and {r.table for r in rows} == set(
        paper.TABLES
    )


def test_canonical_value_is_the_lowest_numbered_table_and_variants_stay_visible():
    cells = paper.canonical()
    dxc14 = cells[("DXC14", "random", "score")]
    assert (dxc14.mean, dxc14.std, dxc14.table, dxc14.tables) == (80.31, 0.10, 2, (2, 4, 7, 8))
    assert [(v.table, v.mean, v.std) for v in dxc14.variants] == [(7, 80.40, 0.05)]
    assert "Table 7 prints 80.40 ± 0.05" in dxc14.source()
    dxc5 = cells[("DXC5", "random", "score")]
    assert (dxc5.mean, dxc5.table) == (86.60, 2) and dxc5.variants[0].text() == "86.62 ± 0.46"
    lxs = cells[("LXS", "imagenet-chexpert", "score")]
    assert lxs.text() == "98.31 ± 0.05" and lxs.variants[0].text() == "98.31 ± 0.051"
    # exactly these three cells differ between tables as printed
    assert sorted(k for k, c in cells.items() if c.variants) == [
        ("DXC14", "random", "score"), ("DXC5", "random", "score"), ("LXS", "imagenet-chexpert", "score")
    ]  # fmt: skip
    # "Supervised" (Table 5) and "ImageNet" (Tables 2, 4) are the same cell
    assert cells[("TXC", "imagenet", "score")].tables == (2, 4, 5)
    epochs = cells[("VFS", "random", "epochs")]
    assert (epochs.mean, epochs.std, epochs.metric, epochs.n, epochs.std_ddof) == (
        100.0,
        0.0,
        "epochs",
        10,
        0,
    )


def test_filters_and_bad_input():
    assert {r.table for r in paper.cells_of(table=3)} == {3}
    assert {r.task for r in paper.cells_of(task="txc")} == {"TXC"}
    assert paper.cells_of(task="ECC", table=8) == []
    with pytest.raises(ValueError, match="unknown task"):
        paper.cells_of(task="XYZ")
    with pytest.raises(ValueError, match="tables are 2-8"):
        paper.cells_of(table=9)
    header = ",".join(paper.COLUMNS)
    with pytest.raises(ValueError, match="no registry name"):
        paper.load_rows(f"{header}\n2,Imagenette,TXC,score,AUC,1,1\n")
    with pytest.raises(ValueError, match="columns"):
        paper.load_rows("table,init\n2,x\n")
    with pytest.raises(ValueError, match="finite"):
        paper.load_rows(f"{header}\n2,ImageNet,TXC,score,AUC,nan,1\n")
