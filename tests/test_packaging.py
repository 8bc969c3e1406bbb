"""The package layout promises: the name `datasets` is Hugging Face's, the config ships."""

import importlib
import sys
from pathlib import Path

import losslab


def test_import_datasets_is_hugging_face():
    # losslab/datasets must never shadow the Hugging Face package.
    hf = importlib.import_module("datasets")
    assert hasattr(hf, "load_dataset"), hf.__file__
    assert Path(losslab.__file__).parent not in Path(hf.__file__).parents


def test_losslab_datasets_is_a_subpackage():
    mod = importlib.import_module("losslab.datasets")
    assert mod.__name__ == "losslab.datasets"
    assert "datasets" not in {Path(p).name for p in sys.path if p}


def test_config_tree_is_inside_the_package():
    conf = Path(losslab.__file__).parent / "conf"
    assert (conf / "train.yaml").is_file()
    text = (conf / "train.yaml").read_text()
    defaults = text.split("defaults:")[1].splitlines()[1].strip()
    assert defaults == "- _self_", "_self_ must come first in the defaults list"


def test_import_losslab_is_light():
    # The CLI must not pull in torch or matplotlib at start-up.
    import subprocess

    code = "import sys, losslab.cli; print(any(m in sys.modules for m in ('torch', 'matplotlib', 'hydra')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
