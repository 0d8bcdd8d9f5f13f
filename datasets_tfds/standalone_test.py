"""`datasets_tfds` stands alone: no `tfmedbench`, no apache-beam, its own distribution and CLI.

The import checks run in child processes with `sys.modules[name] = None`, which makes any
`import name` fail exactly as on a machine without it.
"""

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import datasets_tfds

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Importing these must fail in the child (None in sys.modules = not installed).
ABSENT = "import sys; sys.modules['tfmedbench'] = None; sys.modules['apache_beam'] = None\n"


def _child(code, timeout=600):
    return subprocess.run([sys.executable, "-c", ABSENT + code], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


def test_import_registers_every_builder_without_tfmedbench_and_beam():
    proc = _child(
        "import json, importlib, tensorflow_datasets as tfds, datasets_tfds\n"
        "for module in datasets_tfds.BUILDERS.values():\n"
        "    importlib.import_module(f'datasets_tfds.{module}.fake_data')\n"
        "print(json.dumps({'registered': sorted(set(datasets_tfds.BUILDERS) & "
        "set(tfds.list_builders(with_community_datasets=False))),\n"
        "                  'tfmedbench': 'tfmedbench' in sys.modules and sys.modules['tfmedbench']"
        " is not None}))\n"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"registered": sorted(datasets_tfds.BUILDERS), "tfmedbench": False}


def test_no_module_imports_tfmedbench():
    # Also the lazy imports inside functions, which the child process above cannot reach.
    offenders = []
    for path in sorted(HERE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}:{node.lineno}" for name in names
                          if name.split(".")[0] == "tfmedbench"]  # fmt: skip
    assert not offenders


def test_cli_builds_from_a_manual_dir_and_says_no_download(tmp_path):
    proc = _child(
        "from datasets_tfds.nih_shenzhen import fake_data\n"
        f"fake_data.write_tree({str(tmp_path / 'raw')!r}, 20, size=16)\n"
        "from datasets_tfds.__main__ import main\n"
        f"sys.exit(main(['build', 'tfmedbench_nih_shenzhen', '--manual_dir', "
        f"{str(tmp_path / 'raw')!r}, '--data_dir', {str(tmp_path / 'data')!r}]))\n"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tfmedbench_nih_shenzhen/default/1.0.0 train: 14 examples" in proc.stdout
    assert "from local files (nothing is downloaded)" in proc.stdout
    assert "Downloading" not in proc.stdout + proc.stderr
    assert "Unknown size" not in proc.stdout + proc.stderr


def test_cli_errors_are_one_message_with_status_2(tmp_path, capsys):
    from datasets_tfds.__main__ import main

    assert main(["build", "tfmedbench_nope", "--manual_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: unknown builder 'tfmedbench_nope'; choose")
    assert main(["build", "tfmedbench_drive/paper_split", "--manual_dir", str(tmp_path)]) == 2
    assert "tfmedbench_drive has no config 'paper_split'" in capsys.readouterr().err
    (tmp_path / "raw").mkdir()
    assert main(["build", "tfmedbench_nih_shenzhen/paper_split", "--manual_dir",
                 str(tmp_path / "raw"), "--data_dir", str(tmp_path / "data")]) == 2  # fmt: skip
    assert "error: tfmedbench_nih_shenzhen: " in capsys.readouterr().err


def test_every_builder_subclasses_local_build():
    import tensorflow_datasets as tfds

    from datasets_tfds.local_build import LocalBuild

    for name in datasets_tfds.BUILDERS:
        assert issubclass(tfds.builder_cls(name), LocalBuild), name


def test_standalone_distribution_ships_every_package():
    project = tomllib.loads((HERE / "pyproject.toml").read_text())
    packages = set(project["tool"]["setuptools"]["packages"])
    on_disk = {"datasets_tfds"} | {
        f"datasets_tfds.{p.parent.name}" for p in HERE.glob("*/__init__.py")
    }
    assert packages == on_disk
    assert {f"datasets_tfds.{m}" for m in datasets_tfds.BUILDERS.values()} <= packages
    assert project["tool"]["setuptools"]["package-dir"] == {"datasets_tfds": "."}
    assert not any(d.startswith("tfmedbench") for d in project["project"]["dependencies"])
