"""Label-efficiency subsets: nested, patient-level, stratified, at least one positive per label."""

import numpy as np
import pytest

from tfmedbench.data import subsets


def table(n_patients=200, images_per=(1, 4), k=3, seed=0):
    rng = np.random.default_rng(seed)
    ids, units, positives = [], [], []
    for p in range(n_patients):
        for i in range(rng.integers(*images_per)):
            ids.append(f"{p:05d}_{i:03d}")
            units.append(str(p))
            # label 2 is rare: only patient 137 has it
            positives.append([rng.random() < 0.3, rng.random() < 0.1, p == 137])
    return ids, units, np.asarray(positives)


def test_patient_level_subsets_are_nested_and_keep_a_positive_per_label():
    ids, units, pos = table()
    unit_of = dict(zip(ids, units))
    previous = set()
    for fraction in (0.01, 0.05, 0.1, 0.25, 1.0):
        chosen, notes = subsets.select(ids, units, pos, fraction, seed=99, kind="multi")
        chosen_set = set(chosen)
        assert previous <= chosen_set, fraction  # nested
        previous = chosen_set
        # whole patients only
        patients = {unit_of[i] for i in chosen}
        assert chosen_set == {i for i in ids if unit_of[i] in patients}
        # about the fraction of images (patients are indivisible), never below it
        assert len(chosen) >= fraction * len(ids)
        index = {i: j for j, i in enumerate(ids)}
        for k in range(pos.shape[1]):  # at least one positive for every label
            assert any(pos[index[i], k] for i in chosen), (fraction, k)
        assert notes == []
    assert previous == set(ids)


def test_a_label_without_positives_is_stated():
    ids, units, pos = table()
    pos[:, 1] = False
    _, notes = subsets.select(ids, units, pos, 0.1, seed=99, kind="multi")
    assert notes == ["label 1 has no positive image in the training split"]


def test_binary_sets_are_stratified_and_nested():
    ids = [f"CHNCXR_{i:04d}" for i in range(300)]
    pos = np.asarray([[i % 5 == 0] for i in range(300)])  # 60 positives
    previous = set()
    for fraction in (0.01, 0.1, 0.5, 1.0):
        chosen, _ = subsets.select(ids, ids, pos, fraction, seed=3, kind="binary")
        n_pos = sum(int(i[-4:]) % 5 == 0 for i in chosen)
        assert n_pos == max(1, round(fraction * 60))  # each stratum keeps its share
        assert len(chosen) - n_pos == max(1, round(fraction * 240))
        assert previous <= set(chosen)
        previous = set(chosen)


def test_fixed_draw_ignores_the_run_seed_and_per_run_uses_it():
    from types import SimpleNamespace

    ids, units, pos = table()
    recipe = SimpleNamespace(builder="tfmedbench_chestxray14")
    spec = lambda subset, seed: SimpleNamespace(  # noqa: E731
        recipe=recipe, label_subset=subset, seed=seed, label_fraction=0.1)
    fixed = [subsets.training_ids(spec("fixed", s), None, (ids, units, pos))[0] for s in (0, 1)]
    per_run = [subsets.training_ids(spec("per-run", s), None, (ids, units, pos))[0] for s in (0, 1)]
    assert fixed[0] == fixed[1]
    assert per_run[0] != per_run[1]
    assert subsets.training_ids(spec("per-run", 0), None, (ids, units, pos))[0] == per_run[0]


@pytest.mark.parametrize("fraction", [0.25])
def test_fit_trains_on_the_patient_level_subset(tmp_path, fraction):
    import json

    from datasets_tfds.chestxray14.fake_data import write_tree
    from tfmedbench.train import fit

    write_tree(tmp_path / "raw", n_patients=24)
    result = fit("DXC14", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "raw"),
                 output_dir=str(tmp_path / "run"), label_fraction=fraction, verbose=0,
                 overrides=dict(epochs=1, image_size=32, resize_size=36, batch_size=4,
                                depths=(1, 1, 1, 1), width=8, test_time="resize"))  # fmt: skip
    config = json.loads((result.run_dir / "config.json").read_text())
    metrics = result.metrics
    assert config["label_fraction"] == metrics["label_fraction"] == fraction
    assert metrics["label_subset"] == "fixed"
    from tfmedbench.data import prepare

    builder = prepare.get_builder("tfmedbench_chestxray14", str(tmp_path / "tfds"))
    n_all = builder.info.splits["train"].num_examples
    assert fraction * n_all <= metrics["n_train"] == config["n_train"] < n_all
    # validation and test stay whole
    assert metrics["extra"]["n_test"] == builder.info.splits["test"].num_examples
