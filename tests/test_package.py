"""Package-level guarantees: a light import, lazy exports, readable build errors."""
import json
import subprocess
import sys

import pytest

import mapose

pytestmark = pytest.mark.smoke

HEAVY = ["torch", "onnxruntime", "matplotlib", "dask", "timm", "cv2"]


def test_import_is_light():
    code = (
        "import sys, json, time; t=time.perf_counter(); import mapose; "
        "dt=time.perf_counter()-t; print(json.dumps({'dt': dt, 'mods': sorted(sys.modules)}))"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    loaded = {m.split(".")[0] for m in out["mods"]}
    assert not loaded & set(HEAVY), f"import mapose pulled in {loaded & set(HEAVY)}"
    assert out["dt"] < 1.0


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mapose.nope  # noqa: B018


def test_missing_extension_message():
    from mapose._cy import load

    with pytest.raises(ImportError, match="pip install -e ."):
        load("does_not_exist")


def test_optional_dependency_message():
    from mapose._optional import require

    with pytest.raises(ImportError, match=r"pip install 'mapose\[onnx\]'"):
        require("onnx._definitely_missing_")


@pytest.mark.parametrize("name", sorted(mapose._LAZY_EXPORTS))
def test_every_public_name_resolves(name):
    # Importing a public name must not need an optional dependency: heavy ones load on call.
    assert callable(getattr(mapose, name))


def test_dlc_module_paths():
    from mapose.core import inferenceutils, trackingutils
    from mapose.refine_training_dataset import stitch

    assert inferenceutils.Assembler is mapose.Assembler
    assert trackingutils.SORTEllipse is mapose.SORTEllipse
    assert stitch.TrackletStitcher is mapose.TrackletStitcher


def test_cli_lists_every_command():
    from mapose.cli import _COMMANDS, build_parser

    help_text = build_parser().format_help()
    for command in _COMMANDS:
        assert command in help_text
