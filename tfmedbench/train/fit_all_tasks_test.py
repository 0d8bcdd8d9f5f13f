"""Each of the 7 tasks end to end: official-layout fixture tree -> TFDS build -> fit -> test metric.

The fixture writers are the builders' own fake-data writers (`datasets_tfds.<name>.fake_data`:
exact official layouts, real file formats); training runs one epoch of a tiny same-topology
ResNet at 32 px.
"""

import importlib
import json

import pytest

from tfmedbench.data import prepare
from tfmedbench.tasks import get_recipe
from tfmedbench.train import fit

# task -> (datasets_tfds module, its fake_data.write_tree kwargs)
FIXTURES = {
    "TXC": ("nih_shenzhen", {"n_images": 20, "size": 48}),
    "VFS": ("drive", {"n_train": 6, "n_test": 2}),
    "DXC14": ("chestxray14", {"n_patients": 12}),
    "DXC5": ("chexpert", {"n_train_patients": 20}),
    "LXS": ("montgomery", {"n_per_class": 10}),
    "PXS": ("siim_pneumothorax", {}),
    "ECC": ("rsna_pe", {}),
}
TINY = dict(epochs=1, image_size=32, resize_size=36, batch_size=2, depths=(1, 1, 1, 1), width=8)


@pytest.mark.parametrize("task", list(FIXTURES))
def test_fit_each_task_on_fixture_data(task, tmp_path):
    module, kwargs = FIXTURES[task]
    if task in ("PXS", "ECC"):
        pytest.importorskip("pydicom", reason="writing the DICOM fixtures needs pydicom")
    fake_data = importlib.import_module(f"datasets_tfds.{module}.fake_data")
    fake_data.write_tree(tmp_path / "raw", **kwargs)
    recipe = get_recipe(task)
    result = fit(task, data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "raw"),
                 output_dir=str(tmp_path / "run"), overrides=TINY, verbose=0)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    assert m["status"] == "ok" and m["task"] == task and m["epochs_run"] == 1
    builder = prepare.get_builder(recipe.builder, str(tmp_path / "tfds"))
    n_test = builder.info.splits["test"].num_examples
    if recipe.kind == "classification":
        assert set(m["per_class"]) == set(recipe.labels)
        # Tiny test splits can hold one class only: such AUCs must be None, never made up.
        for name, auc in m["per_class"].items():
            assert auc is None or 0.0 <= auc <= 1.0, name
        # undefined when every scored class is (JSON null, never NaN: metrics.json stays JSON)
        assert m["score"] is None or 0.0 <= m["score"] <= 1.0
        if m["score"] is None:
            assert all(m["per_class"][name] is None for name in recipe.scored)
        if not (recipe.code == "DXC5" and recipe.frontal_only):
            assert m["extra"]["n_test"] == n_test
    else:
        assert 0.0 <= m["score"] <= 1.0 and m["extra"]["n_test"] == n_test
        assert 0.0 <= m["extra"]["dice_global"] <= 1.0
