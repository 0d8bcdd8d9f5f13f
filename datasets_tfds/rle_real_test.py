"""The SIIM-ACR RLE codec (datasets_tfds.rle) on the real train-rle.csv and on random masks.

The shared file is the stage-2 training CSV: 12,954 rows for 12,047 images, 2,669 of them
with a pneumothorax. (The often-quoted 10,675 images / 11,582 rows is the stage-1 file, whose
images are a subset of these.) The counts below were measured from the file and are asserted
exactly, so a parser that drops, merges or mis-reads rows fails.
"""

import gzip

import numpy as np
import pytest


from datasets_tfds import rle
from datasets_tfds.siim_pneumothorax.siim_pneumothorax_dataset_builder import parse_rle_csv

RLE_FILE = "labels/siim-pneumothorax-train-rle.csv.gz"


def reference_rle2mask(code, width, height):
    """The challenge's own decoder (mask_functions.py), kept loop-for-loop as the oracle."""
    mask = np.zeros(width * height)
    array = np.asarray([int(x) for x in code.split()])
    starts, lengths = array[0::2], array[1::2]
    current_position = 0
    for index, start in enumerate(starts):
        current_position += start
        mask[current_position : current_position + lengths[index]] = 255
        current_position += lengths[index]
    return mask.reshape(width, height)


@pytest.fixture(scope="module")
def real_rows(shared_data):
    path = shared_data / RLE_FILE
    if not path.is_file():
        pytest.skip(f"{path} not found (set TFMEDBENCH_SHARED_DATA to the shared data folder)")
    with gzip.open(path, "rt") as handle:
        return parse_rle_csv(handle, source=path)


def test_row_image_and_positive_counts(real_rows):
    rows = [code for codes in real_rows.values() for code in codes]
    assert len(rows) == 12_954
    assert len(real_rows) == 12_047  # unique ImageIds
    assert sum(rle.is_empty(code) for code in rows) == 9_378
    positive = [i for i, codes in real_rows.items() if not all(map(rle.is_empty, codes))]
    assert len(positive) == 2_669
    # An image is either all "-1" (one row) or all regions: never both.
    assert all(len(real_rows[i]) == 1 for i in real_rows if i not in set(positive))
    assert all(not any(map(rle.is_empty, real_rows[i])) for i in positive)
    assert max(len(codes) for codes in real_rows.values()) == 10


def test_every_row_decodes_and_reencodes_to_the_same_string(real_rows):
    foreground = 0
    for image_id, codes in real_rows.items():
        for code in codes:
            mask = rle.decode(code, 1024, 1024)  # raises on any malformed or overflowing row
            assert mask.shape == (1024, 1024) and mask.dtype == np.uint8
            if not rle.is_empty(code):
                foreground += np.count_nonzero(mask)
                assert rle.encode(mask) == code.strip(), image_id
    assert foreground == 39_729_957  # measured: total positive pixels over all region rows
    assert not rle.decode("-1", 1024, 1024).any() and not rle.decode(" -1", 1024, 1024).any()


def test_decoder_matches_the_challenge_reference_and_is_column_major(real_rows):
    positive = sorted(i for i, codes in real_rows.items() if not rle.is_empty(codes[0]))
    for image_id in positive[::50]:  # 54 images, several with multiple regions
        union = rle.decode_union(real_rows[image_id], 1024, 1024)
        reference = np.zeros((1024, 1024), bool)
        for code in real_rows[image_id]:
            reference |= reference_rle2mask(code, 1024, 1024).T > 0
        np.testing.assert_array_equal(union, reference.astype(np.uint8), err_msg=image_id)
    # Column-major: the first run of a row starts at pixel `offset`, i.e. row offset % 1024 of
    # column offset // 1024.
    code = real_rows[positive[0]][0]
    offset, length = (int(v) for v in code.split()[:2])
    mask = rle.decode(code, 1024, 1024)
    assert mask[offset % 1024, offset // 1024] == 1
    assert mask[(offset - 1) % 1024, (offset - 1) // 1024] == 0


@pytest.mark.parametrize("shape", [(1024, 1024), (37, 53), (1, 9), (8, 1)])
def test_random_masks_round_trip(shape):
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.02, 0.5, 1.0):
        mask = (rng.random(shape) < density).astype(np.uint8)
        code = rle.encode(mask)
        assert (code == rle.EMPTY) == (not mask.any())
        np.testing.assert_array_equal(rle.decode(code, *shape), mask)
        np.testing.assert_array_equal(rle.decode(" " + code, *shape), mask)  # " -1" style


def test_union_of_overlapping_regions():
    a, b = np.zeros((6, 5), np.uint8), np.zeros((6, 5), np.uint8)
    a[1:4, 1:3], b[2:6, 2:5] = 1, 1
    union = rle.decode_union([rle.encode(a), rle.encode(b), " -1"], 6, 5)
    np.testing.assert_array_equal(union, a | b)


@pytest.mark.parametrize(
    "code, message",
    [("5", "pairs"), ("1 2 3", "pairs"), ("1 x", "non-integer"), ("-2 3", "negative"),
     ("1 0", "non-positive"), ("10 5 3 4", "past the 4x5 image"), ("", "pairs")],
)  # fmt: skip
def test_malformed_rle_is_rejected(code, message):
    with pytest.raises(ValueError, match=message):
        rle.decode(code, 4, 5)
