"""Paired tests: DeLong (fast, Sun & Xu 2014) vs an independent O(n^2) implementation of DeLong's
original formula and a large paired bootstrap; Dice tests vs scipy; pairing by image_id; crafted predictions files."""

import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from scipy import stats as sps

from tfmedbench.errors import UserError
from tfmedbench.study import paired


def ordinal_data(seed=7, n=113):
    """A clinical-score-like set: outcome, an ordinal grade 1..5 (heavy ties) and two markers."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.37
    grade = np.clip(np.round(2 + 1.4 * y + rng.normal(0, 1.1, n)), 1, 5)
    marker_a = np.round(0.1 + 0.25 * y + rng.gamma(2.0, 0.08, n), 2)
    marker_b = 0.2 * y + rng.normal(0, 0.4, n)
    return y, grade, marker_a, marker_b


def delong_original(positive, scores):
    """DeLong et al. (1988) written out: psi over all positive x negative pairs, O(m n)."""
    scores = np.atleast_2d(scores)
    x, y = scores[:, positive], scores[:, ~positive]
    psi = (x[:, :, None] > y[:, None, :]) + 0.5 * (x[:, :, None] == y[:, None, :])  # [M, m, n]
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    theta = v10.mean(axis=1)
    m, n = v10.shape[1], v01.shape[1]
    s10 = (v10 - theta[:, None]) @ (v10 - theta[:, None]).T / (m - 1)
    s01 = (v01 - theta[:, None]) @ (v01 - theta[:, None]).T / (n - 1)
    return theta, s10 / m + s01 / n


def test_fast_delong_equals_the_original_formula():
    rng = np.random.default_rng(0)
    for n, ties in ((40, False), (150, True), (301, True)):
        y = rng.random(n) < 0.3
        s = rng.normal(size=(3, n)) + y
        if ties:
            s = np.round(s, 1)  # many ties within and across classes
        aucs, cov = paired.delong_cov(y, s)
        ref_aucs, ref_cov = delong_original(y, s)
        assert aucs == pytest.approx(ref_aucs, abs=1e-13)
        assert cov == pytest.approx(ref_cov, rel=1e-10, abs=1e-15)
    y, wfns, s100b, _ = ordinal_data()  # ordinal scores: heavy ties
    assert paired.delong_cov(y, np.stack([wfns, s100b]))[1] == pytest.approx(
        delong_original(y, np.stack([wfns, s100b]))[1], rel=1e-10
    )


def test_influence_form_equals_delong_for_one_class():
    y, wfns, s100b, ndka = ordinal_data()
    res = paired.paired_auc(y[:, None], [wfns[:, None]], [ndka[:, None]], ["outcome"])
    ref = paired.delong_test(y, wfns, ndka)
    for key in ("diff", "se", "z", "p"):
        assert res["per_class"]["outcome"][key] == pytest.approx(ref[key], rel=1e-12)
        assert res["mean"][key] == pytest.approx(ref[key], rel=1e-12)


def correlated_multilabel(seed, n=600, k=3):
    """Classes sharing most positives and models whose errors are shared across classes: the
    class differences are strongly correlated, so the mean's variance needs the covariances."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    y = np.stack([(z + rng.normal(scale=0.3, size=n)) > 0.5 for _ in range(k)], 1)
    ea, eb = rng.normal(size=n), rng.normal(size=n)
    sa = np.stack([y[:, j] + ea + 0.2 * rng.normal(size=n) for j in range(k)], 1)
    sb = np.stack([0.9 * y[:, j] + eb + 0.2 * rng.normal(size=n) for j in range(k)], 1)
    return y, sa, sb, [f"c{j}" for j in range(k)]


def test_delong_se_agrees_with_a_large_paired_bootstrap():
    rng = np.random.default_rng(3)
    n = 500
    y = rng.random(n) < 0.35
    common = rng.normal(size=n)
    sa, sb = y + common + rng.normal(size=n), 0.7 * y + common + rng.normal(size=n)
    delong = paired.delong_test(y, sa, sb)
    boot = paired.paired_bootstrap_mean_auc(y[:, None], sa[:, None], sb[:, None], ["x"],
                                            n_boot=4000, seed=0)  # fmt: skip
    assert boot["diff"] == pytest.approx(delong["diff"], abs=1e-12)
    assert boot["se"] == pytest.approx(delong["se"], rel=0.08)  # bootstrap SD's own error ~1.1%
    assert boot["p"] == pytest.approx(delong["p"], abs=0.03)


def test_mean_auc_test_uses_the_joint_covariance():
    y, sa, sb, names = correlated_multilabel(7)
    res = paired.paired_auc(y, [sa], [sb], names)
    boot = paired.paired_bootstrap_mean_auc(y, sa, sb, names, n_boot=3000, seed=1)
    assert res["mean"]["diff"] == pytest.approx(boot["diff"], abs=1e-12)
    assert res["mean"]["se"] == pytest.approx(boot["se"], rel=0.08)
    # Treating the classes as independent underestimates it badly here (~35%).
    indep = np.sqrt(sum(res["per_class"][c]["se"] ** 2 for c in names)) / len(names)
    assert indep < 0.8 * boot["se"]


def test_pooled_over_seeds_averages_the_per_seed_terms():
    y, sa, sb, names = correlated_multilabel(11, n=300)
    rng = np.random.default_rng(0)
    runs_a = [sa + 0.3 * rng.normal(size=sa.shape) for _ in range(3)]
    runs_b = [sb + 0.3 * rng.normal(size=sb.shape) for _ in range(3)]
    per = [paired.paired_auc(y, [a], [b], names) for a, b in zip(runs_a, runs_b)]
    pooled = paired.paired_auc(y, runs_a, runs_b, names)
    assert pooled["mean"]["diff"] == pytest.approx(
        np.mean([p["mean"]["diff"] for p in per]), abs=1e-12
    )
    # var of the seed-averaged difference <= mean of the per-seed variances (Cauchy-Schwarz)
    assert pooled["mean"]["se"] ** 2 <= np.mean([p["mean"]["se"] ** 2 for p in per]) + 1e-15
    # the same run repeated: pooling changes nothing
    same = paired.paired_auc(y, [runs_a[0]] * 3, [runs_b[0]] * 3, names)
    assert same["mean"]["z"] == pytest.approx(per[0]["mean"]["z"], rel=1e-12)


def test_undefined_classes_are_left_out():
    y, sa, sb, names = correlated_multilabel(2, n=200)
    y[:, 1] = False
    y[0, 2] = True
    y[1:, 2] = False  # one positive: DeLong's variance is undefined
    res = paired.paired_auc(y, [sa], [sb], names)
    assert res["per_class"]["c1"] is None and res["per_class"]["c2"] is None
    assert res["mean"]["classes"] == ["c0"]
    assert res["mean"]["z"] == pytest.approx(res["per_class"]["c0"]["z"])


def test_paired_dice_matches_scipy():
    rng = np.random.default_rng(5)
    a = np.clip(rng.beta(8, 2, size=80), 0, 1)
    b = np.clip(a - 0.03 + 0.05 * rng.normal(size=80), 0, 1)
    a[:10] = b[:10] = 1.0  # empty-vs-empty images: zero differences
    res = paired.paired_dice([a], [b])
    w = sps.wilcoxon(a - b)  # drops the zeros ("wilcox")
    t = sps.ttest_rel(a, b)
    assert res["diff"] == pytest.approx(np.mean(a - b))
    assert res["wilcoxon_p"] == pytest.approx(w.pvalue) and res["t_p"] == pytest.approx(t.pvalue)
    assert res["n_nonzero"] == 70
    same = paired.paired_dice([a], [a.copy()])
    assert np.isnan(same["wilcoxon_p"]) and same["diff"] == 0.0
    # pooled: the per-image difference averaged over the seed pairs
    a2, b2 = np.clip(a + 0.01, 0, 1), b
    pooled = paired.paired_dice([a, a2], [b, b2])
    assert pooled["wilcoxon_p"] == pytest.approx(sps.wilcoxon(((a - b) + (a2 - b2)) / 2).pvalue)


def test_global_dice_paired_bootstrap():
    rng = np.random.default_rng(1)
    n = 200
    tgt = rng.integers(0, 400, n).astype(float)
    pa = np.maximum(tgt + rng.normal(0, 30, n), 0)
    pb = np.maximum(tgt + rng.normal(20, 60, n), 0)
    sa = np.stack([np.minimum(pa, tgt) * 0.95, pa, tgt], 1)
    sb = np.stack([np.minimum(pb, tgt) * 0.85, pb, tgt], 1)
    res = paired.paired_bootstrap_global_dice([sa], [sb], n_boot=500, seed=0)
    glob = lambda s: 2 * s[:, 0].sum() / (s[:, 1] + s[:, 2]).sum()  # noqa: E731
    assert res["diff"] == pytest.approx(glob(sa) - glob(sb))
    assert res["p"] < 0.01 and res["n_used"] == 500


# --------------------------------------------------------------------------- files
def save_cls(path, ids, scores, labels, names=("a", "b")):
    np.savez_compressed(path, image_id=np.asarray(ids), scores=scores.astype(np.float32),
                        labels=labels.astype(np.float32), label_names=np.asarray(names))  # fmt: skip
    return path


def test_compare_runs_pairs_by_image_id(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    ids = np.array([f"img{i:04d}" for i in range(n)])
    y = (rng.random((n, 2)) < 0.4).astype(float)
    preds = {}
    for name, shift in (("a", 1.0), ("b", 0.4)):
        for seed in (0, 1):
            s = y * shift + rng.normal(size=(n, 2))
            perm = rng.permutation(n) if name == "b" else np.arange(n)  # B stored shuffled
            preds[(name, seed)] = (
                s,
                save_cls(tmp_path / f"{name}{seed}.npz", ids[perm], s[perm], y[perm]),
            )
    read = {k: paired.read_predictions(p) for k, (_, p) in preds.items()}
    out = paired.compare_runs(
        {0: read[("a", 0)], 1: read[("a", 1)]}, {0: read[("b", 0)], 1: read[("b", 1)]}
    )
    assert out["seeds"] == [0, 1] and out["kind"] == "classification"
    direct = paired.paired_auc(y >= 0.5, [preds[("a", 0)][0]], [preds[("b", 0)][0]], ["a", "b"])
    assert out["per_seed"][0]["mean"]["z"] == pytest.approx(direct["mean"]["z"], rel=1e-6)
    # a run tested on other images is refused in one line naming both files
    save_cls(tmp_path / "other.npz", np.r_[ids[:-1], ["imgXXXX"]], preds[("b", 0)][0], y)
    with pytest.raises(
        UserError, match=r"different images \(1 only in the first, 1 only in the second\)"
    ):
        paired.compare_runs(
            {0: read[("a", 0)]}, {0: paired.read_predictions(tmp_path / "other.npz")}
        )
    flipped = save_cls(tmp_path / "flip.npz", ids, preds[("b", 0)][0], 1 - y)
    with pytest.raises(UserError, match="different labels"):
        paired.compare_runs({0: read[("a", 0)]}, {0: paired.read_predictions(flipped)})


def _npy_bytes(header_dict, data=b"", version=(1, 0)):
    import io

    buf = io.BytesIO()  # the writers emit the magic string and the header
    writer = (
        np.lib.format.write_array_header_1_0
        if version == (1, 0)
        else np.lib.format.write_array_header_2_0
    )
    writer(buf, header_dict)
    return buf.getvalue() + data


def crafted_files(d):
    ids = np.array(["a", "b", "c"])
    files = {}
    (d / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip" * 10)
    files["garbage"] = d / "garbage.npz"
    with zipfile.ZipFile(d / "huge.npz", "w") as zf:  # header claims 10**12 floats
        zf.writestr("image_id.npy", _npy_bytes({"descr": "<U1", "fortran_order": False, "shape": (3,)},
                                               ids.astype("<U1").tobytes()))  # fmt: skip
        zf.writestr(
            "scores.npy",
            _npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}),
        )
    files["huge"] = d / "huge.npz"
    np.savez(d / "pickle.npz", image_id=np.array(["a", {"x": 1}], dtype=object), allow_pickle=True)
    files["pickle"] = d / "pickle.npz"
    with zipfile.ZipFile(d / "truncated.npz", "w") as zf:
        zf.writestr(
            "image_id.npy",
            _npy_bytes({"descr": "<U1", "fortran_order": False, "shape": (1000,)}, b"ab"),
        )
    files["truncated"] = d / "truncated.npz"
    np.savez(d / "struct.npz", image_id=np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
    files["struct"] = d / "struct.npz"
    np.savez(d / "dupes.npz", image_id=np.array(["a", "a", "b"]), dice_per_image=np.ones(3))
    files["dupes"] = d / "dupes.npz"
    np.savez(d / "old_format.npz", scores=np.ones((3, 1)), labels=np.ones((3, 1)))
    files["old_format"] = d / "old_format.npz"
    np.savez(d / "nan.npz", image_id=ids, scores=np.array([[0.1], [np.nan], [0.3]]),
             labels=np.ones((3, 1)), label_names=np.array(["x"]))  # fmt: skip
    files["nan"] = d / "nan.npz"
    with zipfile.ZipFile(d / "bigheader.npz", "w") as zf:
        zf.writestr("image_id.npy", np.lib.format.magic(1, 0) + b"\xff\xff" + b" " * 70000)
    files["bigheader"] = d / "bigheader.npz"
    return files


def test_crafted_predictions_files_fail_cleanly_in_a_child_process(tmp_path):
    files = crafted_files(tmp_path)
    script = textwrap.dedent("""
        import json, sys, resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a bomb would hit this
        from tfmedbench.errors import UserError
        from tfmedbench.study.paired import read_predictions
        out = {}
        for name, path in json.loads(sys.argv[1]).items():
            try:
                read_predictions(path)
                out[name] = "accepted"
            except UserError as err:
                out[name] = str(err)
        print(json.dumps(out))
    """)
    arg = json.dumps({k: str(v) for k, v in files.items()})
    proc = subprocess.run([sys.executable, "-c", script, arg],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, msg in out.items():
        assert msg != "accepted", name
        assert "\n" not in msg and str(files[name]) in msg, (name, msg)
    assert "over the size limit" in out["huge"]
    assert "dtype object" in out["pickle"] or "allowed kinds" in out["pickle"]
    assert "truncated" in out["truncated"] and "duplicates" in out["dupes"]
    assert "no image_id" in out["old_format"] and "NaN" in out["nan"]
