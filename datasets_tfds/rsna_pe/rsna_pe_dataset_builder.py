"""RSNA STR pulmonary embolism CT slices (benchmark task ECC), as 2.5D windowed images."""

from __future__ import annotations

import collections
import csv
import io
import typing

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from datasets_tfds import common, dicom, parallel, resized
from datasets_tfds.local_build import LocalBuild

_EXPECTED_TREE = """\
rsna-str-pulmonary-embolism-detection/   (optional level: its parent may be the manual dir)
  train.csv                              one row per slice (columns below)
  train/
    <StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
"""
ID_COLUMNS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
STUDY_COLUMNS = (
    "negative_exam_for_pe", "qa_motion", "qa_contrast", "flow_artifact", "rv_lv_ratio_gte_1",
    "rv_lv_ratio_lt_1", "leftsided_pe", "chronic_pe", "true_filling_defect_not_pe",
    "rightsided_pe", "acute_and_chronic_pe", "central_pe", "indeterminate",
)  # fmt: skip
CSV_COLUMNS = ID_COLUMNS + ("pe_present_on_image",) + STUDY_COLUMNS
# The PE window of the RSNA-PE 1st-place solution, used by the benchmark (Appendix B).
WINDOW_LEVEL, WINDOW_WIDTH = 100, 700


class SliceRow(typing.NamedTuple):
    """One train.csv row: a slice, its PE label and its study's labels (0/1 each)."""

    study: str
    series: str
    sop: str
    pe: int
    study_labels: tuple


class RsnaPeConfig(resized.ImageConfig):
    """`beam=True` always generates with Apache Beam (one work item per study; any config does
    when the build is given Beam options); same examples. `shorter_side`: see
    datasets_tfds.resized."""

    def __init__(self, *, beam, **kwargs):
        super().__init__(**kwargs)
        self.beam = beam


_DEFAULT = RsnaPeConfig(
    name="default",
    description="Native resolution, lossless PNG; single-process generation unless the build "
    "is given Beam options.",
    beam=False,
)


class TfmedbenchRsnaPe(LocalBuild, tfds.core.GeneratorBasedBuilder):
    """RSNA STR Pulmonary Embolism Detection: CTPA slices with per-slice PE labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: PE-windowed (WL 100, WW 700) previous/current/next slices; "
        "seeded 80/20 split by study stratified by PE, then 10% of train studies as validation."
    }
    BUILDER_CONFIGS = [
        _DEFAULT,
        RsnaPeConfig(
            name="beam",
            description="Apache Beam generation, parallel over studies (pip install apache-beam).",
            beam=True,
        ),
        # 512: the CT slices' own size (only the format changes: JPEG q95, 3.9x faster to
        # decode than their PNG); 256: shrunk (datasets_tfds.resized).
        *(resized.reduced(_DEFAULT, side) for side in resized.SIDES),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    # The split is part of the dataset version: changing seed or fractions needs a new VERSION.
    SPLIT_SEED = 2021
    TEST_FRACTIONS = {"train": 0.8, "test": 0.2}
    VALIDATION_FRACTIONS = {"train": 0.9, "validation": 0.1}  # applied to the 80% above
    EXPECTED_TREE = _EXPECTED_TREE
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Download the training data of the Kaggle competition rsna-str-pulmonary-embolism-detection
(train.csv and train/, about 1 TB of DICOM) and pass the folder holding them (or the folder above
it) as --manual_dir. Expected tree:
{_EXPECTED_TREE}
train.csv columns: {", ".join(CSV_COLUMNS)}.
Every DICOM needs its train.csv row and every row its DICOM; otherwise the build stops naming
the files. For the 1.8M slices use the `beam` config, e.g.
  tfds build --imports datasets_tfds tfmedbench_rsna_pe --config beam --manual_dir DIR \\
    --beam_pipeline_options="runner=DirectRunner,direct_num_workers=16,\\
direct_running_mode=multi_processing"
"""

    def _info(self) -> tfds.core.DatasetInfo:
        flag = lambda: tfds.features.Scalar(dtype=np.bool_)  # noqa: E731
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # Channels: windowed slice before, this slice, slice after (z order); the
                    # first and last slice of a series repeat themselves as their missing neighbour.
                    # Reduced configs: JPEG q95, 4:4:4 (datasets_tfds.resized).
                    "image": resized.image_feature(self.builder_config, channels=3),
                    "label": tfds.features.ClassLabel(names=["no_pe", "pe"]),
                    "study_id": tfds.features.Text(),
                    "series_id": tfds.features.Text(),
                    "sop_id": tfds.features.Text(),
                    "slice_index": tfds.features.Scalar(dtype=np.int32),  # 0 = lowest z
                    **{column: flag() for column in STUDY_COLUMNS},
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://www.kaggle.com/c/rsna-str-pulmonary-embolism-detection",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = common.find_root_in(
            dl_manager,
            builder_name=self.name,
            candidates=("", "rsna-str-pulmonary-embolism-detection"),
            required=("train.csv", "train"),
            expected_tree=_EXPECTED_TREE,
        )
        rows_by_study = read_train_csv(root / "train.csv", builder_name=self.name)
        studies = sorted(rows_by_study)
        has_pe = [any(row.pe for row in rows_by_study[s]) for s in studies]
        parts = split_studies(
            studies, has_pe, self.TEST_FRACTIONS, self.VALIDATION_FRACTIONS, self.SPLIT_SEED
        )
        empty = [name for name, part in parts.items() if not part]
        if empty:  # TFDS would fail later with "No examples were yielded"
            raise common.ManualDataError(
                f"{self.name}: only {len(studies)} studies in train.csv: the seeded split "
                f"leaves {', '.join(empty)} empty"
            )
        return {
            name: self._generate_examples(root, part, rows_by_study)
            for name, part in parts.items()
        }

    def _generate_examples(self, root, studies, rows_by_study):
        side = self.builder_config.shorter_side
        if self.builder_config.beam or parallel.requested(self):
            return _beam_examples(root, studies, self.name, side)
        return self._examples_one_process(root, studies, rows_by_study, side)

    def _examples_one_process(self, root, studies, rows_by_study, side):
        for study in studies:
            yield from study_examples(root, study, rows_by_study[study], self.name, side)


def _beam_examples(root, studies, builder_name, side=None):
    """A beam.PTransform: train.csv -> rows of this split's studies -> grouped by study -> examples.

    The rows are re-read from train.csv by the pipeline (ReadFromText works on gs:// and splits
    the file across workers) instead of being embedded in the pipeline graph, which for 1.8M
    rows would exceed runner limits on graph size. Only the split's study ids travel with it.
    """
    # Imported here: only the `beam` config needs apache-beam (TFDS's lazy import says how to
    # install it when missing).
    from tensorflow_datasets.core.utils.lazy_imports_utils import apache_beam as beam

    keep = frozenset(studies)
    csv_path = str(root / "train.csv")
    header = _read_header(root / "train.csv", builder_name)
    root = str(root)
    return (
        "ReadTrainCsv" >> beam.io.ReadFromText(csv_path, skip_header_lines=1)
        | "ParseRows" >> beam.Map(lambda line: _parse_row(_split_line(line), header, builder_name))
        | "KeepSplitStudies" >> beam.Filter(lambda row: row.study in keep)
        | "KeyByStudy" >> beam.Map(lambda row: (row.study, row))
        | "GroupByStudy" >> beam.GroupByKey()
        | "StudyExamples" >> beam.FlatMap(
            lambda item: study_examples(root, item[0], list(item[1]), builder_name, side)
        )
    )


def study_examples(root, study, rows, builder_name, side=None):
    """All (key, example) pairs of one study: the unit of parallel work (`side`: the reduced
    configs' shorter side, see datasets_tfds.resized).

    Each series is read whole (its slices' neighbours are needed), ordered by
    ImagePositionPatient z, or by InstanceNumber when a slice has no position.
    """
    root = epath.Path(root)
    by_series = collections.defaultdict(list)
    for row in rows:
        by_series[row.series].append(row)
    for series in sorted(by_series):
        folder = root / "train" / study / series
        slices = _read_series(folder, by_series[series], builder_name)
        windowed = [image for _, image in slices]
        last = len(slices) - 1
        for index, (row, image) in enumerate(slices):
            stacked = np.stack(
                [windowed[max(index - 1, 0)], image, windowed[min(index + 1, last)]], axis=-1
            )
            yield row.sop, {
                "image": resized.stored_image(stacked, side, common.encode_png),
                "label": row.pe,
                "study_id": row.study,
                "series_id": row.series,
                "sop_id": row.sop,
                "slice_index": index,
                **{c: bool(v) for c, v in zip(STUDY_COLUMNS, row.study_labels)},
            }


def _read_series(folder, rows, builder_name):
    """[(row, windowed uint8 slice)] of one series in slice order; files and rows must match."""
    if not folder.is_dir():
        raise common.ManualDataError(
            f"{builder_name}: train.csv lists {len(rows)} slice(s) of series folder {folder}, "
            "which does not exist"
        )
    on_disk = {
        epath.Path(name).stem: folder / name
        for name in tf.io.gfile.listdir(str(folder))
        if name.lower().endswith(".dcm")
    }
    listed = {row.sop: row for row in rows}
    missing = sorted(set(listed) - set(on_disk))
    extra = sorted(set(on_disk) - set(listed))
    if missing or extra:
        raise common.ManualDataError(
            f"{builder_name}: series {folder} does not match train.csv: "
            f"{len(missing)} row(s) without a DICOM {[f'{s}.dcm' for s in missing[:5]]}, "
            f"{len(extra)} DICOM(s) without a row {[str(on_disk[s]) for s in extra[:5]]}"
        )
    sops = sorted(listed)
    images, z_positions, numbers, shape = [], [], [], None
    for sop in sops:
        dataset, pixels = dicom.read(on_disk[sop], builder_name=builder_name)
        if shape is not None and pixels.shape != shape:
            raise common.ManualDataError(
                f"{builder_name}: {on_disk[sop]} is {pixels.shape}, other slices of its series "
                f"are {shape}"
            )
        shape = pixels.shape
        hu = dicom.hounsfield(dataset, pixels)
        images.append(dicom.window_uint8(hu, WINDOW_LEVEL, WINDOW_WIDTH))
        z_positions.append(dicom.z_position(dataset))
        numbers.append(dicom.instance_number(dataset))
    # Sort by z when every slice has it, else by InstanceNumber; ties broken by SOP id so the
    # order never depends on directory listing order.
    keys = z_positions
    if None in z_positions:
        if None in numbers:
            raise common.ManualDataError(
                f"{builder_name}: cannot order series {folder}: "
                f"{on_disk[sops[numbers.index(None)]]} has neither ImagePositionPatient nor "
                "InstanceNumber"
            )
        keys = numbers
    order = sorted(range(len(sops)), key=lambda i: (keys[i], sops[i]))
    return [(listed[sops[i]], images[i]) for i in order]


def read_train_csv(path, *, builder_name="tfmedbench_rsna_pe"):
    """train.csv -> {StudyInstanceUID: [SliceRow, ...]}; bad header, values or duplicates raise."""
    reader = csv.reader(io.StringIO(epath.Path(path).read_text()))
    header = _check_header(next(reader, []), path, builder_name)
    rows_by_study, seen = collections.defaultdict(list), set()
    # 1.8M rows: share the repeated study/series ids and label tuples instead of copying them.
    shared = {}
    for line_number, fields in enumerate(reader, start=2):
        if not fields:
            continue
        row = _parse_row(fields, header, builder_name, where=f"{path} line {line_number}")
        row = row._replace(
            study=shared.setdefault(row.study, row.study),
            series=shared.setdefault(row.series, row.series),
            study_labels=shared.setdefault(row.study_labels, row.study_labels),
        )
        if row.sop in seen:
            raise common.ManualDataError(f"{builder_name}: {path}: SOPInstanceUID {row.sop} twice")
        seen.add(row.sop)
        rows_by_study[row.study].append(row)
    if not rows_by_study:
        raise common.ManualDataError(f"{builder_name}: {path} has no data rows")
    return dict(rows_by_study)


def _read_header(path, builder_name):
    with epath.Path(path).open() as handle:
        return _check_header(_split_line(handle.readline()), path, builder_name)


def _check_header(names, path, builder_name):
    """Column name -> index; every CSV_COLUMNS entry must be present (any order)."""
    index = {name.strip(): i for i, name in enumerate(names)}
    missing = [c for c in CSV_COLUMNS if c not in index]
    if missing:
        raise common.ManualDataError(f"{builder_name}: {path} lacks column(s) {missing}")
    return index


def _split_line(line):
    return next(csv.reader([line]))


def _parse_row(fields, header, builder_name, where="train.csv"):
    try:
        values = [fields[header[c]].strip() for c in CSV_COLUMNS]
        flags = [int(float(v)) for v in values[3:]]  # some exports write 0.0 / 1.0
    except (IndexError, ValueError) as err:
        raise common.ManualDataError(f"{builder_name}: {where}: bad row {fields}: {err}") from err
    if any(f not in (0, 1) for f in flags):
        raise common.ManualDataError(f"{builder_name}: {where}: labels must be 0 or 1: {fields}")
    return SliceRow(*values[:3], pe=flags[0], study_labels=tuple(flags[1:]))


def split_studies(studies, has_pe, test_fractions, validation_fractions, seed):
    """Seeded 80/20 train/test split of studies, then 10% of train studies as validation.

    Both cuts are stratified by whether a study has any PE slice and use exact-count,
    order-independent splits (datasets_tfds.common.split_fractions); the second uses seed + 1.
    """
    first = common.split_fractions(studies, test_fractions, seed, strata=has_pe)
    stratum = dict(zip(studies, has_pe))
    train = first["train"]
    second = common.split_fractions(
        train, validation_fractions, seed + 1, strata=[stratum[s] for s in train]
    )
    return {"train": second["train"], "validation": second["validation"], "test": first["test"]}
