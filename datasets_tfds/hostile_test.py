"""Hostile data files are refused cleanly: no crash, no blow-up, one line naming the file or row.

Every file is generated here -- RLE rows with values near 2**62 and 2**63, a deflated DICOM that
inflates to 1.1 GB, DICOM headers declaring 60000 x 60000 pixels or 1000 frames, PNGs whose
IHDR declares 11000 x 11000 16-bit (a valid 242 MB zlib stream, 240 KB on disk), JPEG and GIF
headers declaring 65000 x 65000 -- and loaded in a child process whose address space is capped
(weights_converter.testing.isolated): a segfault fails through the exit code, an allocation of
gigabytes fails inside the child instead of exhausting the machine.
"""

import os
import struct
import zlib

import numpy as np
import pytest

from weights_converter.testing.isolated import assert_refused, run_isolated

pytest.importorskip("pydicom")

MIB = 1 << 20
ZERO_MIB = bytes(MIB)


def zeros_stream(n, prefix=b"", wbits=zlib.MAX_WBITS):
    """`prefix` + n zero bytes, deflated (zlib container unless wbits < 0), in ~1 s per GB.

    After Z_FULL_FLUSH the compressor keeps no history, so every MiB of zeros encodes to the
    same block: the block is repeated, and the zlib trailer (Adler-32) is computed separately.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(n, MIB)
    block = packer.compress(ZERO_MIB) + packer.flush(zlib.Z_FULL_FLUSH) if whole else b""
    tail = packer.compress(bytes(rest)) + packer.flush()
    if wbits < 0:
        return head + block * whole + tail
    adler = zlib.adler32(prefix)
    for _ in range(whole):
        adler = zlib.adler32(ZERO_MIB, adler)
    adler = zlib.adler32(bytes(rest), adler)
    return head + block * whole + tail[:-4] + struct.pack(">I", adler)


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path, width, height, bit_depth):
    """A valid all-black grey PNG of any declared size: the rows are never materialized."""
    row = 1 + width * bit_depth // 8  # filter byte + samples
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zeros_stream(row * height)) + _chunk(b"IEND", b"")
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def write_jpeg_claiming(path, width, height):
    """A real 8x8 JPEG whose SOF0 header is patched to declare width x height."""
    from PIL import Image

    Image.new("L", (8, 8)).save(path, format="JPEG")
    data = bytearray(open(path, "rb").read())
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    open(path, "wb").write(bytes(data))
    return path


def write_gif_claiming(path, width, height):
    from PIL import Image

    Image.new("P", (8, 8)).save(path, format="GIF")
    data = bytearray(open(path, "rb").read())
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    descriptor = data.index(b"\x2c")  # image descriptor: left, top, width, height
    data[descriptor + 5: descriptor + 9] = struct.pack("<HH", width, height)
    open(path, "wb").write(bytes(data))
    return path


def _meta(transfer_syntax):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    return meta


def _header_dataset(rows, columns, bits=8, **extra):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.Modality = "CR"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def _dicom_bytes(meta, ds_bytes):
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    head = DicomBytesIO()
    write_file_meta_info(head, meta)
    return b"\0" * 128 + b"DICM" + head.getvalue() + ds_bytes


def _dataset_bytes(ds):
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    return body.getvalue()


def write_deflated_bomb(path, pixel_mib):
    """Deflated Explicit VR LE: the dataset -- header + `pixel_mib` MiB of zero PixelData -- is one
    raw deflate stream (1 KB per MiB on disk); pydicom inflates the whole stream before parsing."""
    side = int((pixel_mib * MIB) ** 0.5)
    header = _dataset_bytes(_header_dataset(side, side))
    pixel_tag = b"\xe0\x7f\x10\x00" + b"OB\0\0" + struct.pack("<I", side * side)
    stream = zeros_stream(side * side, prefix=header + pixel_tag, wbits=-zlib.MAX_WBITS)
    with open(path, "wb") as handle:
        handle.write(_dicom_bytes(_meta("1.2.840.10008.1.2.1.99"), stream))
    return path


def write_dicom_claiming(path, rows, columns, bits=16, frames=None, pixel_bytes=64):
    extra = {"NumberOfFrames": frames} if frames else {}
    ds = _header_dataset(rows, columns, bits, **extra)
    ds.PixelData = b"\0" * pixel_bytes
    with open(path, "wb") as handle:
        handle.write(_dicom_bytes(_meta("1.2.840.10008.1.2.1"), _dataset_bytes(ds)))
    return path


RLE_ROWS = {  # CSV line -> EncodedPixels that overflowed int64 or numpy before
    3: f"{2**62} 5",
    4: f"5 {2**62}",
    5: f"{2**63 - 1} {2**63 - 1}",  # sums to -2 in int64: passed the old bounds check
    6: f"1 2 {2**64 - 3} 4",
    7: "9" * 5000 + " 1",
}


def _files(folder):
    f = lambda name: str(folder / name)  # noqa: E731
    files = {
        "png16_11000": (write_png(f("big16.png"), 11000, 11000, 16), "read_image", "121,000,000 pixels"),
        "png8_passthrough": (write_png(f("big8.png"), 9000, 9000, 8), "grey8_png", "81,000,000 pixels"),
        "png_bomb_error": (write_png(f("huge.png"), 20000, 20000, 8), "read_image", "400,000,000 pixels, more than"),
        "jpeg_65000": (write_jpeg_claiming(f("huge.jpg"), 65000, 65000), "read_image", "4,225,000,000 pixels, more than"),
        "gif_65535": (write_gif_claiming(f("huge.gif"), 65535, 65535), "read_image", "4,294,836,225 pixels, more than"),
        "dicom_deflate_bomb": (write_deflated_bomb(f("bomb.dcm"), 1100), "dicom_read", "inflates to more than"),
        "dicom_huge_header": (write_dicom_claiming(f("huge.dcm"), 60000, 60000), "dicom_read", "larger than the 8192x8192"),
        "dicom_frames": (write_dicom_claiming(f("frames.dcm"), 512, 512, frames=1000), "dicom_read", "1000 frames"),
    }
    good_dicom = f("good.dcm")  # written by the child (dicom.write), then read back
    good_png = write_png(f("good.png"), 64, 48, 16)
    csv = f("train-rle.csv")
    lines = ["ImageId,EncodedPixels", "ok,-1"] + [f"id{n},{code}" for n, code in RLE_ROWS.items()]
    with open(csv, "w") as handle:
        handle.write("\n".join(lines[:2] + [lines[2]]) + "\n")
    return files, good_dicom, good_png, csv


CHILD = """
import numpy as np
from datasets_tfds import common, dicom, rle
from datasets_tfds.siim_pneumothorax.siim_pneumothorax_dataset_builder import parse_rle_csv

CALLS = {{"read_image": common.read_image, "grey8_png": common.grey8_png, "dicom_read": dicom.read}}
CASES = [(k, (lambda p=p, c=c: CALLS[c](p))) for k, (p, c) in {files!r}.items()]
CASES += [("rle_" + str(n), (lambda c=c: rle.decode(c, 1024, 1024))) for n, c in {rows!r}.items()]
CASES.append(("rle_csv", lambda: parse_rle_csv(open({csv!r}), source={csv!r})))
CASES.append(("rle_csv_long_field", lambda: parse_rle_csv(["ImageId,EncodedPixels", "x," + "1 " * 70000], source="long.csv")))
CASES.append(("good_dicom", lambda: (dicom.write({good_dicom!r}, np.arange(16, dtype=np.uint8).reshape(4, 4)),
                                     dicom.read({good_dicom!r})[1].tolist())[1]))
CASES.append(("good_png", lambda: common.read_image({good_png!r}).size))
"""


def test_hostile_data_files_are_refused_in_a_capped_child(tmp_path):
    files, good_dicom, good_png, csv = _files(tmp_path)
    setup = CHILD.format(files={k: (p, c) for k, (p, c, _) in files.items()}, rows=RLE_ROWS, csv=csv,
                         good_dicom=good_dicom, good_png=good_png)
    outcomes = run_isolated(setup, budget_mb=1024, timeout=400)
    for label, (path, _, match) in files.items():
        assert_refused(outcomes, label, "ManualDataError", path=path, match=match)
    for line in RLE_ROWS:
        assert_refused(outcomes, f"rle_{line}", "ValueError", match="past the 1024x1024 image")
    assert_refused(outcomes, "rle_csv", "ManualDataError", path=csv, match=rf"line 3 \(ImageId id3\): RLE runs to pixel {2**62 + 5}")
    assert_refused(outcomes, "rle_csv_long_field", "ManualDataError", path="long.csv", match="line 2: unreadable CSV")
    assert outcomes["good_dicom"]["ok"] and outcomes["good_dicom"]["value"].startswith("[[0, 1, 2, 3], [4, 5,")
    assert outcomes["good_png"] == {"ok": True, "value": "(64, 48)"}
    assert outcomes["peak_rss_growth_mb"] < 256, outcomes["peak_rss_growth_mb"]
    sizes = {k: os.path.getsize(p) for k, (p, _, _) in files.items()}
    print(f"HOSTILE data files: {len(files)} files ({max(sizes.values()) / MIB:.1f} MiB largest on disk) + "
          f"{len(RLE_ROWS) + 2} RLE cases refused; child peak RSS growth {outcomes['peak_rss_growth_mb']:.0f} MiB")


def test_every_rle_row_of_the_csv_is_checked_naming_its_line():
    from datasets_tfds.common import ManualDataError
    from datasets_tfds.siim_pneumothorax.siim_pneumothorax_dataset_builder import parse_rle_csv

    for line, code in RLE_ROWS.items():
        rows = ["ImageId,EncodedPixels", "ok,-1"] + ["fine,1 2"] * (line - 3) + [f"bad,{code}"]
        with pytest.raises(ManualDataError, match=rf"^\S+: x\.csv line {line} \(ImageId bad\): RLE ") as err:
            parse_rle_csv(rows, source="x.csv")
        assert "\n" not in str(err.value)


def test_symlink_out_of_the_manual_dir_is_refused_naming_it(tmp_path):
    from datasets_tfds import common

    manual, outside = tmp_path / "manual", tmp_path / "secret.png"
    (manual / "images").mkdir(parents=True)
    outside.write_bytes(b"not yours")
    (manual / "images" / "a.png").write_bytes(b"x")
    os.symlink(manual / "images" / "a.png", manual / "images" / "inside.png")  # stays inside: fine
    kwargs = dict(builder_name="b", candidates=("",), required=("images",), expected_tree="images/")
    assert common.find_root(manual, **kwargs) == manual
    link = manual / "images" / "leak.png"
    os.symlink(outside, link)
    with pytest.raises(common.ManualDataError, match=r"leak\.png is a symbolic link to .*secret\.png, outside") as err:
        common.find_root(manual, **kwargs)
    assert "\n" not in str(err.value)
    link.unlink()
    os.symlink(tmp_path, manual / "images" / "up")  # a directory link leading out
    with pytest.raises(common.ManualDataError, match=r"images/up is a symbolic link"):
        common.find_root(manual, **kwargs)
    linked_manual = tmp_path / "manual-link"  # the manual dir itself may be a link
    (manual / "images" / "up").unlink()
    os.symlink(manual, linked_manual)
    assert common.find_root(linked_manual, **kwargs) == linked_manual
