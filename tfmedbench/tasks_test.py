import pytest

from tfmedbench.errors import UserError
from datasets_tfds.chestxray14 import LABELS as CHESTXRAY14_LABELS
from tfmedbench.tasks import RECIPES, get_recipe


def test_seven_tasks_with_paper_settings():
    assert set(RECIPES) == {"ECC", "DXC14", "DXC5", "TXC", "LXS", "VFS", "PXS"}
    dxc14 = get_recipe("dxc14")
    assert dxc14.labels == CHESTXRAY14_LABELS and len(dxc14.labels) == 14
    assert dxc14.labels[0] == "Atelectasis" and dxc14.labels[-1] == "Hernia"
    assert (dxc14.image_size, dxc14.lr, dxc14.patience, dxc14.test_time) == (224, 2e-4, 10, "tencrop")
    assert (dxc14.schedule, dxc14.plateau_factor, dxc14.plateau_patience) == ("plateau", 0.5, 5)
    dxc5 = get_recipe("DXC5")
    assert len(dxc5.labels) == 14 and dxc5.uncertainty_policy == "lsr-ones"
    assert dxc5.scored == ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
    assert get_recipe("txc").num_outputs == 1
    for code in ("DXC14", "TXC"):  # the original: batch 32, 1000 epochs, stop after > 10
        r = get_recipe(code)
        assert (r.batch_size, r.epochs, r.patience) == (32, 1000, 10)
    assert (dxc5.batch_size, dxc5.epochs) == (32, 10)  # Appendix E: ten epochs
    for code in ("LXS", "PXS"):
        r = get_recipe(code)
        assert (r.image_size, r.loss, r.lr, r.schedule, r.patience, r.augmentation) == (
            224, "dice", 1e-3, "cosine", 20, "xray_seg")
        # the original's utils.py Dice over the batch, cv2 INTER_NEAREST, no normalisation,
        # augmented validation
        assert (r.batch_size, r.resize, r.normalization, r.augment_validation) == (
            32, "cv2-nearest", "none", True)
    vfs = get_recipe("VFS")
    assert (vfs.image_size, vfs.loss, vfs.augmentation) == (512, "bce", "drive_saunet")
    assert (vfs.batch_size, vfs.epochs, vfs.expansion, vfs.augment_draw, vfs.resize) == (
        16, 100, 13, "fixed", "cv2-linear")
    assert vfs.dice_score == "global"
    ecc = get_recipe("ECC")
    assert (ecc.image_size, ecc.lr, ecc.schedule, ecc.epochs) == (576, 4e-4, "linear", 1)


def test_overrides_coerce_cli_strings_and_reject_unknown_fields():
    r = get_recipe("TXC", epochs="3", lr="1e-3", depths="1,1,1,1", frontal_only="true")
    assert (r.epochs, r.lr, r.depths, r.frontal_only) == (3, 1e-3, (1, 1, 1, 1), True)
    assert get_recipe("TXC").epochs == 1000  # recipes are immutable
    with pytest.raises(UserError, match="unknown recipe field.*'epoch'"):
        get_recipe("TXC", epoch=3)
    with pytest.raises(UserError, match="expects int"):
        get_recipe("TXC", epochs="three")
    with pytest.raises(UserError, match="unknown task 'XYZ'"):
        get_recipe("XYZ")
    with pytest.raises(UserError, match="multiple of 32"):
        get_recipe("VFS", image_size=100)
    with pytest.raises(UserError, match="uncertainty_policy"):
        get_recipe("DXC5", uncertainty_policy="u-maybe")


def test_recipe_round_trips_through_json_dict():
    from tfmedbench.tasks import Recipe

    r = get_recipe("DXC5", depths=(1, 1, 1, 1))
    assert Recipe.from_dict(r.to_dict()) == r
