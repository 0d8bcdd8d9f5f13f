"""The paper's split lists as a builder config (`<builder>/paper_split`).

The original code ships split lists for Shenzhen (`ShenzenCXR_{train,valid,test}_data.txt`) and
ChestX-ray14 (`Xray14_{train,val,test}_official.txt`) in
https://github.com/MR-HosseinzadehTaher/BenchmarkTransferLearning/tree/main/Version1/dataset .
Their licence keeps them out of this package, so a `paper_split` config reads them from the
user's manual dir (beside the images, or in any folder between the images and the manual dir).

Lists are untrusted input: each file is read whole up to MAX_LIST_BYTES, must be ASCII, and
every non-blank line must match the builder's line grammar. The lists must name existing
images, no image twice, and agree with the dataset's own labels; otherwise the build stops with
one line naming the list file and line. On the real data the paper's lists and the datasets'
labels agree for every image (measured: Shenzhen 662 of 662 file-name labels; ChestX-ray14
112,120 of 112,120 rows of Data_Entry_2017_v2020.csv), so a disagreement means a damaged or
foreign list, and the build refuses it rather than choosing a side.
"""

from __future__ import annotations

import hashlib
import logging
from typing import NamedTuple

from etils import epath

from datasets_tfds.errors import ManualDataError
from datasets_tfds.resized import ImageConfig

log = logging.getLogger(__name__)

SOURCE = (
    "https://github.com/MR-HosseinzadehTaher/BenchmarkTransferLearning/tree/main/Version1/dataset"
)
# The largest list of the paper (ChestX-ray14 train, 75,312 lines) has 3,389,040 bytes.
MAX_LIST_BYTES = 16 * 2**20
_MAX_SHOWN = 60  # characters of a bad line quoted in an error


class SplitConfig(ImageConfig):
    """`lists` = {split: list file name} for the paper's split; None for the builder's own split.
    `shorter_side` (ImageConfig): None for native-resolution images, else the reduced size.

    `sha256` = {list file name: hex digest of the file published with the paper}: a build
    records whether the lists it read are byte-identical to those.
    """

    def __init__(self, *, lists=None, sha256=None, **kwargs):
        super().__init__(**kwargs)
        self.lists = lists
        self.sha256 = sha256 or {}


class Entry(NamedTuple):
    """One line of a split list: the image's file name, its labels, and where it was read."""

    name: str
    labels: tuple
    line: int


def find_lists(manual_dir, root, names, *, builder_name):
    """{split: path} of the list files `names` ({split: file name}), all in one folder.

    Looks in `root` (the folder the builder found the data in), then in each folder above it up
    to and including `manual_dir`; the first folder that holds all of them wins.
    """
    folders = _folders_between(root, manual_dir)
    partial = None
    for folder in folders:
        found = {split: folder / name for split, name in names.items() if (folder / name).is_file()}
        if len(found) == len(names):
            return found
        if found and partial is None:
            partial = (folder, sorted(set(names.values()) - {p.name for p in found.values()}))
    if partial:
        folder, missing = partial
        raise ManualDataError(
            f"{builder_name}/paper_split: {folder} holds only some of the split lists; missing "
            f"{', '.join(missing)} (get them from {SOURCE})"
        )
    raise ManualDataError(
        f"{builder_name}/paper_split: split lists {', '.join(names.values())} not found in "
        f"{' or '.join(str(f) for f in folders)}; download them from {SOURCE} and put them in "
        "the manual dir beside the images"
    )


def _folders_between(root, manual_dir):
    """[root, its parents up to manual_dir] if manual_dir is above root, else [root, manual_dir]."""
    root, top = epath.Path(root), epath.Path(manual_dir)
    folders = [root]
    if str(root) != str(top):
        for parent in root.parents:
            folders.append(parent)
            if str(parent) == str(top):
                break
        else:
            folders = [root, top]
    return folders


def read_list(path, parse_line, *, builder_name):
    """([Entry], sha256 hex) of one list file; `parse_line(text) -> (name, labels)` raises
    ValueError(reason) for a line it rejects, which becomes a one-line error naming file + line."""
    path = epath.Path(path)
    with path.open("rb") as handle:
        data = handle.read(MAX_LIST_BYTES + 1)
    if len(data) > MAX_LIST_BYTES:
        raise ManualDataError(
            f"{builder_name}: {path} is larger than {MAX_LIST_BYTES} bytes; not a split list"
        )
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as err:
        raise ManualDataError(
            f"{builder_name}: {path}: not an ASCII split list (byte {err.start})"
        ) from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            name, labels = parse_line(line)
        except ValueError as err:
            raise ManualDataError(
                f"{builder_name}: {path} line {number}: {err}, got {line[:_MAX_SHOWN]!r}"
            ) from None
        entries.append(Entry(name, tuple(labels), number))
    if not entries:
        raise ManualDataError(f"{builder_name}: {path} lists no image")
    return entries, hashlib.sha256(data).hexdigest()


def check_lists(lists, dataset_labels, *, builder_name, labels_from):
    """{split: [image name]} after checking the lists against the dataset.

    `lists` = {split: (path, [Entry])}; `dataset_labels` = {image name: labels tuple} of every
    image of the dataset; `labels_from` names where those labels come from (for the error).
    Unlisted images are left out and counted in a warning.
    """
    seen = {}  # image name -> (path, line) of its first listing
    out = {}
    for split, (path, entries) in lists.items():
        for entry in entries:
            where = f"{builder_name}: {path} line {entry.line}"
            if entry.name in seen:
                first_path, first_line = seen[entry.name]
                raise ManualDataError(
                    f"{where}: {entry.name} is listed twice (first in {first_path} line "
                    f"{first_line}); an image belongs to one split"
                )
            seen[entry.name] = (path, entry.line)
            if entry.name not in dataset_labels:
                raise ManualDataError(
                    f"{where}: {entry.name} is not in the dataset (no such image in the manual dir)"
                )
            if tuple(dataset_labels[entry.name]) != entry.labels:
                raise ManualDataError(
                    f"{where}: labels {' '.join(map(str, entry.labels))} of {entry.name} disagree "
                    f"with {labels_from} ({' '.join(map(str, dataset_labels[entry.name]))}); "
                    "refusing a list that does not match the data"
                )
        out[split] = [entry.name for entry in entries]
    unlisted = len(dataset_labels) - len(seen)
    if unlisted:
        log.warning("%s/paper_split: %d image(s) in no split list left out", builder_name, unlisted)
    return out


def read_checked(manual_dir, root, config, parse_line, dataset_labels, *, builder_name,
                 labels_from):
    """find_lists + read_list + check_lists for `config`: ({split: [image name]}, metadata).

    The metadata (stored with the build) names each list file with its SHA-256 and says whether
    all of them are byte-identical to the files published with the paper.
    """
    paths = find_lists(manual_dir, root, config.lists, builder_name=builder_name)
    lists, digests = {}, {}
    for split, path in paths.items():
        entries, digests[path.name] = read_list(path, parse_line, builder_name=builder_name)
        lists[split] = (path, entries)
    parts = check_lists(lists, dataset_labels, builder_name=builder_name, labels_from=labels_from)
    same = all(digests[name] == config.sha256.get(name) for name in digests)
    if not same:
        log.warning("%s/paper_split: the split lists differ from those published with the paper",
                    builder_name)  # fmt: skip
    metadata = {"split_lists": {name: {"sha256": digest} for name, digest in digests.items()},
                "split_lists_as_published": same}  # fmt: skip
    return parts, metadata
