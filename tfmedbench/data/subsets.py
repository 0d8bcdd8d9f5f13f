"""Label-efficiency subsets of a training split (`--label-fraction F`).

Only the training split is subsampled; validation and test stay whole (the original's
`anno_percent` cuts all three -- a deviation, README). Units are patients where a dataset has
them (ChestX-ray14, CheXpert; RSNA-PE studies), else images. Units are ranked once by a seeded
permutation -- one ranking for every run (`label_subset="fixed"`, as the original's
`random.Random(99)`), or one per run seed ("per-run") -- and a fraction takes a prefix of that
ranking, so subsets are nested: the 1% subset lies inside the 10% one of the same draw.

- Binary single-label sets (Shenzhen, Montgomery, SIIM) are stratified: a prefix of each label's
  own ranking, at least one unit per non-empty stratum.
- Grouped / multi-label sets take ranked units until the subset holds F of the images, then, for
  each label with no positive image yet, add the first-ranked unit that has one (still nested:
  a larger fraction's prefix either holds a positive -- hence the first-ranked one -- or adds it).
A label with no positive in the whole training split cannot be repaired: `notes` says so.
"""

from __future__ import annotations

import math

import numpy as np

# The original's `random.Random(99)`: one draw for every run.
FIXED_SEED = 99
# builder -> (unit feature or None, label feature, "binary" | "multi"); image_id is the key.
SUBSET_FEATURES = {
    "tfmedbench_nih_shenzhen": (None, "label", "binary"),
    "tfmedbench_montgomery": (None, "label", "binary"),
    "tfmedbench_siim_pneumothorax": (None, "has_pneumothorax", "binary"),
    "tfmedbench_drive": (None, None, "binary"),
    "tfmedbench_chestxray14": ("patient_id", "labels", "multi"),
    "tfmedbench_chexpert": ("patient_id", "labels", "multi"),
    "tfmedbench_rsna_pe": ("study_id", "label", "multi"),
}


def read_training_table(recipe, builder):
    """(ids, units, positives [N, K] bool) of the training split, read without decoding images."""
    import tensorflow_datasets as tfds

    from tfmedbench.data.pipeline import reader_for

    unit_key, label_key, _ = SUBSET_FEATURES[recipe.builder]
    reader = reader_for(recipe, builder, "train", training=False)
    reader.cache = False
    reader.late_keys = sorted(k for k, f in builder.info.features.items()
                              if isinstance(f, tfds.features.Image))  # fmt: skip
    ids, units, positives = [], [], []
    from tfmedbench.data.pipeline import example_id

    for _, ex in tfds.as_numpy(reader.records()):
        image_id = example_id(reader.adapter, ex)
        ids.append(image_id.decode() if isinstance(image_id, bytes) else str(image_id))
        units.append(ids[-1] if unit_key is None else str(ex[unit_key]))
        label = np.atleast_1d(ex[label_key]) if label_key else np.zeros(1)
        positives.append(label == 1)
    return ids, units, np.asarray(positives, bool).reshape(len(ids), -1)


def _ranking(names, seed):
    """A seeded permutation of `names` (sorted first: independent of read order)."""
    names = sorted(names)
    order = np.random.RandomState(seed).permutation(len(names))
    return [names[i] for i in order]


def select(ids, units, positives, fraction, seed, kind):
    """Ids of the subset and notes; see the module docstring for the rules."""
    notes = []
    if kind == "binary":
        strata = {}
        for image_id, label in zip(ids, positives[:, 0] if positives.size else [0] * len(ids)):
            strata.setdefault(bool(label), []).append(image_id)
        chosen = []
        for label, members in sorted(strata.items()):
            ranked = _ranking(members, seed + int(label))
            chosen += ranked[: max(1, math.floor(fraction * len(members) + 0.5))]
        return sorted(chosen), notes
    by_unit = {}
    for i, unit in enumerate(units):
        by_unit.setdefault(unit, []).append(i)
    ranked = _ranking(by_unit, seed)
    target, taken, chosen = fraction * len(ids), 0, []
    for unit in ranked:
        if taken >= target and chosen:
            break
        chosen.append(unit)
        taken += len(by_unit[unit])
    chosen_set = set(chosen)
    for k in range(positives.shape[1]):
        if any(positives[i, k] for u in chosen for i in by_unit[u]):
            continue
        first = next((u for u in ranked if any(positives[i, k] for i in by_unit[u])), None)
        if first is None:
            notes.append(f"label {k} has no positive image in the training split")
        elif first not in chosen_set:
            chosen.append(first)
            chosen_set.add(first)
    return sorted(ids[i] for u in chosen for i in by_unit[u]), notes


def training_ids(spec, builder, table=None):
    """(sorted image ids, notes) of the training subset of `spec` (fraction, subset draw)."""
    ids, units, positives = table or read_training_table(spec.recipe, builder)
    seed = FIXED_SEED if spec.label_subset == "fixed" else spec.seed
    kind = SUBSET_FEATURES[spec.recipe.builder][2]
    return select(ids, units, positives, spec.label_fraction, seed, kind)
