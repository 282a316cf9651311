"""The restricted unpickler: real DLC pickles load, crafted ones are refused unexecuted."""
from __future__ import annotations

import glob
import os
import pickle
import io

import numpy as np
import pandas as pd
import pytest

from mapose.io.safe_pickle import (DLCEnum, SafeUnpickler, UnsafePickleError, dumps, loads, read_pickle,
                                   write_pickle)


class _SystemCall:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


@pytest.mark.smoke
def test_crafted_os_system_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_full.pickle"
    path.write_bytes(pickle.dumps({"metadata": _SystemCall(f"touch {marker}")}))
    with pytest.raises(UnsafePickleError, match=r"posix\.system|os\.system"):
        read_pickle(path)
    assert not marker.exists()
    # the typed readers refuse it too
    from mapose.io.full_pickle import read_full_pickle

    with pytest.raises(UnsafePickleError):
        read_full_pickle(path)
    assert not marker.exists()


def _global_pickle(module, name, args=()):
    """Protocol-2 pickle calling ``module.name(*args)``."""
    body = b"c" + f"{module}\n{name}\n".encode() + pickle.dumps(args, protocol=2)[2:-1] + b"R."
    return b"\x80\x02" + body


@pytest.mark.smoke
@pytest.mark.parametrize("module,name", [
    ("builtins", "eval"), ("builtins", "getattr"), ("builtins", "__import__"),
    ("numpy.testing._private.utils", "runstring"), ("numpy", "memmap"), ("numpy", "load"),
    ("pandas", "HDFStore"), ("pandas", "read_pickle"), ("pandas.io.pytables", "HDFStore"),
    ("subprocess", "Popen"), ("numpy", "core"), ("pandas.core.frame", "DataFrame.eval"),
    ("pandas.core.computation.eval", "eval"), ("ruamel.yaml.comments", "copy"),
    ("deeplabcut.x", "not an identifier"),
])
def test_dangerous_globals_refused(module, name):
    with pytest.raises(UnsafePickleError, match="Refusing"):
        loads(_global_pickle(module, name, ("1",)))


@pytest.mark.smoke
def test_numpy_and_pandas_values_roundtrip():
    header = pd.MultiIndex.from_arrays([["s"] * 3, ["a"] * 3, ["x", "y", "likelihood"]],
                                       names=["scorer", "bodyparts", "coords"])
    df = pd.DataFrame(np.arange(6.0).reshape(2, 3), columns=header)
    obj = {"a": np.arange(5, dtype=np.float16), "b": np.float32(2.5), np.int64(3): [1, (2,)],
           "h": header, "df": df, "s": slice(1, 3), "big": np.zeros((300, 300))}
    for proto in (2, 4, 5):
        back = loads(pickle.dumps(obj, protocol=proto))
        assert back["a"].dtype == np.float16 and back["b"] == np.float32(2.5)
        assert back["h"].equals(header) and back["df"].equals(df) and back["s"] == slice(1, 3)
        assert list(back) == list(obj) and type(list(back)[2]) is np.int64


def test_every_shared_pickle_loads(unittest_data, project_a):
    files = glob.glob(str(unittest_data / "*.pickle")) + glob.glob(str(project_a / "**/*.pickle"), recursive=True)
    assert len(files) >= 20
    for f in files:
        read_pickle(f)


def test_dlc_enums_load_without_deeplabcut_and_write_back(project_a, tmp_path):
    meta = read_pickle(next(project_a.glob("videos/*_meta.pickle")))
    cfg = meta["data"]["pytorch-config"]
    assert isinstance(cfg["net_type"], DLCEnum) and cfg["net_type"] == "resnet_50"
    assert cfg["method"] == "bu" and cfg["method"].value == "bu"
    assert type(cfg["net_type"]).__name__ == "NetType"
    out = tmp_path / "m_meta.pickle"
    write_pickle(out, meta)
    raw = out.read_bytes()
    # DLC's class names are in the file, exactly as DLC wrote them
    globals_ = set()

    class Recorder(SafeUnpickler):
        def find_class(self, module, name):
            globals_.add((module, name))
            return super().find_class(module, name)

    Recorder(io.BytesIO(raw)).load()
    assert ("deeplabcut.pose_estimation_pytorch.config.enums", "NetType") in globals_
    assert ("deeplabcut.pose_estimation_pytorch.config.enums", "MethodType") in globals_
    assert "mapose" not in raw.decode("latin-1")
    back = read_pickle(out)
    assert back["data"]["pytorch-config"] == cfg
    assert loads(dumps(back))["data"]["pytorch-config"] == cfg


@pytest.mark.smoke
def test_read_pickle_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_pickle(tmp_path / "nope.pickle")
    (tmp_path / "empty.pickle").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_pickle(tmp_path / "empty.pickle")
    good = pickle.dumps({"a": np.arange(1000.0)}, protocol=5)
    (tmp_path / "trunc.pickle").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_pickle(tmp_path / "trunc.pickle")
    (tmp_path / "text.pickle").write_text("hello world\n")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_pickle(tmp_path / "text.pickle")
    with pytest.raises(IsADirectoryError):
        read_pickle(tmp_path)


@pytest.mark.smoke
def test_write_pickle_is_atomic(tmp_path):
    target = tmp_path / "x.pickle"
    write_pickle(target, {"old": 1})

    class Boom:
        def __reduce__(self):
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_pickle(target, {"new": Boom()})
    assert read_pickle(target) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pickle"]
