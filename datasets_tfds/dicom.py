"""DICOM reading for the SIIM and RSNA-PE builders (pydicom is an optional dependency).

pydicom is imported on first use, never at module import, so `import datasets_tfds` works
without it; only building a DICOM dataset needs `pip install "tfmedbench[dicom]"`.
Files are opened through `epath` (local paths and gs:// alike) and read completely, pixels
included, so a truncated or corrupt file fails here naming the file, not later in training.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from etils import epath

from datasets_tfds.common import ManualDataError

INSTALL_HINT = 'pip install "tfmedbench[dicom]" (without tfmedbench: pip install pydicom)'


def import_pydicom():
    """The pydicom module, or a ManualDataError telling how to install it."""
    try:
        import pydicom  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        raise ManualDataError(
            f"reading DICOM files needs pydicom, which is not installed: {INSTALL_HINT}"
        ) from err
    return pydicom


# What one image may be, checked BEFORE pixel data is decompressed (RSNA-PE slices are 512x512
# 16-bit, SIIM radiographs 1024x1024 8-bit): one frame of at most 8192 x 8192 x 16 bits.
MAX_ROWS = MAX_COLUMNS = 8192
MAX_PIXEL_BYTES = MAX_ROWS * MAX_COLUMNS * 2  # 128 MiB
MAX_FILE_BYTES = MAX_PIXEL_BYTES + (64 << 20)  # + headers, overlays, private tags
DEFLATED = b"1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian: the whole dataset is zlib'd


def _check_deflated(data):
    """A deflated dataset is inflated whole by pydicom: bound it first (2 MB can inflate to GBs)."""
    if DEFLATED not in data[:4096]:
        return None
    if data[128:132] != b"DICM" or data[132:138] != b"\x02\x00\x00\x00UL":
        return "deflated DICOM without a file meta group length"
    start = 144 + int.from_bytes(data[140:144], "little")
    if DEFLATED not in data[144:start]:
        return None  # the UID is some other element's value, not the transfer syntax
    inflater, pending, inflated = zlib.decompressobj(-zlib.MAX_WBITS), data[start:], 0
    try:
        while pending and inflated <= MAX_FILE_BYTES:  # count in 16 MiB pieces, keep nothing
            inflated += len(inflater.decompress(pending, 16 << 20))
            pending = inflater.unconsumed_tail
    except zlib.error as err:
        return f"corrupt deflated dataset ({err})"
    if inflated > MAX_FILE_BYTES:
        return f"its deflated dataset inflates to more than {MAX_FILE_BYTES >> 20} MiB"
    return None


def _check_header(dataset):
    """Refuse an image larger than MAX_PIXEL_BYTES before its pixels are decoded."""
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    frames = int(str(dataset.get("NumberOfFrames", 1) or 1).strip() or 1)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    bits = int(dataset.get("BitsAllocated", 8) or 8)
    if frames != 1:
        return f"{frames} frames (expected one image per file)"
    if rows > MAX_ROWS or columns > MAX_COLUMNS or rows * columns * samples * -(-bits // 8) > MAX_PIXEL_BYTES:
        return (f"{rows}x{columns} pixels, {samples} sample(s) of {bits} bits: larger than the "
                f"{MAX_ROWS}x{MAX_COLUMNS} 16-bit image this reader accepts")
    return None


def read(path, *, builder_name="", stop_before_pixels=False):
    """Parse the DICOM file at `path` -> (pydicom Dataset, pixel array or None).

    The pixel array is the stored values as pydicom decodes them (signed when
    PixelRepresentation is 1), before any rescale. Any failure raises ManualDataError naming
    `path`: not a DICOM, truncated header, pixel data shorter than Rows x Columns says, a
    compressed transfer syntax with no decoder installed, or an image larger than
    MAX_ROWS x MAX_COLUMNS x 16 bits (checked before decompressing anything).
    """
    pydicom = import_pydicom()
    prefix = f"{builder_name}: " if builder_name else ""
    try:
        file_path = epath.Path(path)
        size = file_path.stat().length
        if size > MAX_FILE_BYTES:
            raise ManualDataError(f"{prefix}{path}: {size:,} bytes, larger than a DICOM image can "
                                  f"be here ({MAX_FILE_BYTES >> 20} MiB)")
        data = file_path.read_bytes()
        problem = _check_deflated(data)
        dataset = None if problem else pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
        problem = problem or _check_header(dataset)
        if problem:
            raise ManualDataError(f"{prefix}{path}: refused: {problem}")
        pixels = None if stop_before_pixels else dataset.pixel_array
    except ManualDataError:
        raise
    except Exception as err:  # pydicom raises many types (InvalidDicomError, EOFError, ...)
        raise ManualDataError(
            f"{prefix}corrupt, truncated or unreadable DICOM {path}: "
            f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        ) from err
    if pixels is not None and pixels.ndim != 2:
        raise ManualDataError(
            f"{prefix}{path}: expected one grey frame, got pixel array of shape {pixels.shape} "
            f"(PhotometricInterpretation {dataset.get('PhotometricInterpretation')})"
        )
    return dataset, pixels


def bits_allocated(dataset) -> int:
    return int(dataset.get("BitsAllocated", 8))


def radiograph_grey(dataset, pixels, dtype):
    """Stored X-ray pixels -> [H, W, 1] of `dtype` (uint8 or uint16), bright = dense.

    Losslessly, with no windowing: MONOCHROME1 (white = 0) is inverted over the stored bit
    range so all images share MONOCHROME2 polarity; signed data is offset by 2^(bits-1) into
    the unsigned range. For uint16, 8-bit sources are multiplied by 257 (0..255 -> 0..65535,
    the rule of datasets_tfds.common.to_grey16) and deeper sources are kept as stored.
    Raises ValueError for sources deeper than `dtype` can hold (e.g. 12 bits into uint8).
    """
    bits = int(dataset.get("BitsStored", bits_allocated(dataset)))
    values = pixels.astype(np.int64)
    if int(dataset.get("PixelRepresentation", 0)) == 1:
        values = values + (1 << (bits - 1))
    if str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip() == "MONOCHROME1":
        values = (1 << bits) - 1 - values
    if values.min() < 0 or values.max() >= (1 << bits):
        raise ValueError(f"pixel values outside the {bits}-bit range BitsStored declares")
    if dtype == np.uint8:
        if bits > 8:
            raise ValueError(f"{bits}-bit pixels do not fit uint8")
        return values.astype(np.uint8)[..., None]
    if bits <= 8:
        return (values * 257).astype(np.uint16)[..., None]
    return values.astype(np.uint16)[..., None]


def hounsfield(dataset, pixels) -> np.ndarray:
    """CT stored pixels -> Hounsfield units (float64) with RescaleSlope / RescaleIntercept."""
    slope = float(dataset.get("RescaleSlope", 1.0))
    intercept = float(dataset.get("RescaleIntercept", 0.0))
    return pixels.astype(np.float64) * slope + intercept


def window_uint8(hu, level=100, width=700) -> np.ndarray:
    """HU -> uint8 exactly as the RSNA-PE 1st-place solution's `window(img, WL=100, WW=700)`.

    That code clips to [WL - WW//2, WL + WW//2], then stretches each slice by its own min and
    max (`X -= X.min(); X /= X.max()`), multiplies by 255 and truncates with
    `astype('uint8')`. The same float64 operations in the same order are used here so every
    pixel matches. For a chest slice, which reaches both window ends (air below -250 HU, bone
    above 450 HU), the stretch is the identity. A uniform slice (max == min), where the original
    divides by zero, maps to 0.
    """
    upper, lower = level + width // 2, level - width // 2
    windowed = np.clip(np.asarray(hu, dtype=np.float64), lower, upper)
    windowed = windowed - windowed.min()
    peak = windowed.max()
    if peak == 0:
        return np.zeros(windowed.shape, dtype=np.uint8)
    return (windowed / peak * 255.0).astype(np.uint8)


def z_position(dataset):
    """ImagePositionPatient z (the slice's position along the patient axis), or None."""
    position = dataset.get("ImagePositionPatient")
    if position is None or len(position) != 3:
        return None
    return float(position[2])


def instance_number(dataset):
    number = dataset.get("InstanceNumber")
    return None if number is None or str(number).strip() == "" else int(number)


# ----------------------------------------------------------------------------- fixtures
# Writing is used by tests and synthetic demo trees: real files in the official layouts.
_SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
}


def write(path, pixels, *, modality="CR", photometric="MONOCHROME2", bits_stored=None,
          study_uid=None, series_uid=None, sop_uid=None, **attributes):
    """Write a single-frame, uncompressed (explicit VR little endian) DICOM file with file meta.

    `pixels` is a 2-D uint8, uint16 or int16 array; BitsAllocated follows its dtype, BitsStored
    defaults to it, PixelRepresentation is 1 for int16. Extra `attributes` (e.g.
    RescaleSlope=1, RescaleIntercept=-1024, ImagePositionPatient=[0, 0, z], InstanceNumber=3)
    are set as DICOM keywords. Returns the SOPInstanceUID.
    """
    pydicom = import_pydicom()
    # pylint: disable=import-outside-toplevel
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16, np.int16):
        raise ValueError(f"pixels must be 2-D uint8/uint16/int16, got {pixels.dtype}{pixels.shape}")
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _SOP_CLASSES[modality]
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = _SOP_CLASSES[modality]
    dataset.SOPInstanceUID = sop_uid
    dataset.StudyInstanceUID = study_uid or generate_uid()
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    dataset.Modality = modality
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = pixels.dtype.itemsize * 8
    dataset.BitsStored = bits_stored or dataset.BitsAllocated
    dataset.HighBit = dataset.BitsStored - 1
    dataset.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    buffer = io.BytesIO()
    if int(pydicom.__version__.split(".")[0]) >= 3:
        dataset.save_as(buffer, enforce_file_format=True)
    else:  # pydicom 2.x
        dataset.is_little_endian, dataset.is_implicit_VR = True, False
        dataset.save_as(buffer, write_like_original=False)
    epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
    epath.Path(path).write_bytes(buffer.getvalue())
    return sop_uid
