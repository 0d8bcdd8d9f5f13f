"""split_lists: finding, reading (bounded, allow-listed lines) and checking the paper's lists."""

import pytest

from datasets_tfds import split_lists
from datasets_tfds.errors import ManualDataError
from datasets_tfds.nih_shenzhen import nih_shenzhen_dataset_builder as shenzhen

NAMES = {"train": "a.txt", "validation": "b.txt", "test": "c.txt"}
parse = shenzhen.parse_list_line


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_lists_are_found_in_the_first_folder_holding_all_of_them(tmp_path):
    images = tmp_path / "top" / "images"
    images.mkdir(parents=True)
    for name in NAMES.values():
        _write(tmp_path / name, ["x"])
    assert split_lists.find_lists(tmp_path, images, NAMES, builder_name="b") == {
        split: tmp_path / name for split, name in NAMES.items()
    }
    for name in NAMES.values():  # a complete set nearer the images wins
        _write(images / name, ["x"])
    found = split_lists.find_lists(tmp_path, images, NAMES, builder_name="b")
    assert {p.parent for p in found.values()} == {images}


def test_a_partial_set_names_what_is_missing(tmp_path):
    _write(tmp_path / "a.txt", ["x"])
    with pytest.raises(ManualDataError, match=r"b/paper_split: .* missing b.txt, c.txt \(get them"):
        split_lists.find_lists(tmp_path, tmp_path, NAMES, builder_name="b")


def test_read_list_gives_entries_lines_and_digest(tmp_path):
    path = _write(tmp_path / "a.txt", ["CHNCXR_0001_0.png,0", "", "CHNCXR_0002_1.png,1"])
    entries, digest = split_lists.read_list(path, parse, builder_name="b")
    assert entries == [("CHNCXR_0001_0.png", (0,), 1), ("CHNCXR_0002_1.png", (1,), 3)]
    assert len(digest) == 64


@pytest.mark.parametrize(
    "content, message",
    [
        (b"CHNCXR_0001_0.png,0\nCHNCXR_0002_1.png;1\n", r"a.txt line 2: expected .*got 'CHNCXR_"),
        (b"CHNCXR_0001_0.png,0\n\xff\xfe\n", r"a.txt: not an ASCII split list \(byte 20\)"),
        (b"\n\n", r"a.txt lists no image"),
        (b"x" * 101, r"a.txt is larger than 100 bytes"),
    ],
)
def test_bad_list_files_give_one_line_naming_file_and_line(tmp_path, monkeypatch, content,
                                                           message):  # fmt: skip
    monkeypatch.setattr(split_lists, "MAX_LIST_BYTES", 100)
    path = tmp_path / "a.txt"
    path.write_bytes(content)
    with pytest.raises(ManualDataError, match=message) as err:
        split_lists.read_list(path, parse, builder_name="b")
    assert "\n" not in str(err.value)


def test_check_lists_refuses_duplicates_unknown_images_and_other_labels(tmp_path):
    labels = {"p.png": (0,), "q.png": (1,), "r.png": (1,)}
    entry = split_lists.Entry

    def check(lists):
        return split_lists.check_lists(lists, labels, builder_name="b", labels_from="the files")

    ok = {"train": ("a.txt", [entry("p.png", (0,), 1)]), "test": ("c.txt", [entry("q.png", (1,), 1)])}
    assert check(ok) == {"train": ["p.png"], "test": ["q.png"]}  # r.png: unlisted, left out
    twice = {**ok, "validation": ("b.txt", [entry("q.png", (1,), 7)])}
    with pytest.raises(ManualDataError, match=r"b.txt line 7: q.png is listed twice \(first in c"):
        check(twice)
    unknown = {"train": ("a.txt", [entry("s.png", (0,), 4)])}
    with pytest.raises(ManualDataError, match=r"a.txt line 4: s.png is not in the dataset"):
        check(unknown)
    other = {"train": ("a.txt", [entry("r.png", (0,), 2)])}
    with pytest.raises(ManualDataError, match=r"a.txt line 2: labels 0 of r.png disagree with the"):
        check(other)
