"""Tracks / pose tables: ``.h5`` (every key DLC uses) and ``.csv`` with DLC's header rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _io_helpers import truncate_copy
from mapose.examples import make_example_poses, tracks_dataframe
from mapose.io.tracks_h5 import (csv_header_rows, h5_keys, read_tracks, read_tracks_csv,
                                 write_tracks_csv, write_tracks_h5)


def _storer_format(path, key):
    with pd.HDFStore(path, mode="r") as s:
        return s.get_storer(key).format_type


def _all_h5(unittest_data, project_a):
    return [*unittest_data.glob("*.h5"), *project_a.glob("*/*.h5"), *project_a.glob("labeled-data/*/*.h5")]


def test_read_real_h5(unittest_data, project_a):
    mb = read_tracks(unittest_data / "montblanc_tracks.h5")
    assert mb.shape == (180, 39) and list(mb.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    assert list(dict.fromkeys(mb.columns.get_level_values("individuals"))) == ["bird1", "bird2", "bird3", "single"]
    el = read_tracks(next(project_a.glob("videos/*_el.h5")))
    assert h5_keys(next(project_a.glob("videos/*_el.h5"))) == ["tracks"]
    assert el.shape == (150, 45) and (el.dtypes == np.float64).all()
    untracked = project_a / "analysis_manual" / "synthADLC_Resnet50_projANov23shuffle1_snapshot_best-50.h5"
    assert h5_keys(untracked) == ["df_with_missing"] and (read_tracks(untracked).dtypes == np.float32).all()
    assert read_tracks(unittest_data / "trimouse_calib.h5").shape == (500, 72)


def test_h5_roundtrip_same_key_format_and_frame(unittest_data, project_a, tmp_path):
    for src in _all_h5(unittest_data, project_a):
        (key,) = h5_keys(src)
        fmt = _storer_format(src, "/" + key)
        df = read_tracks(src)
        out = tmp_path / src.name
        write_tracks_h5(out, df, key=key, format=fmt)
        assert h5_keys(out) == [key] and _storer_format(out, "/" + key) == fmt
        # DLC-side reader sees exactly the frame pandas reads from DLC's own file
        pd.testing.assert_frame_equal(pd.read_hdf(out, key), pd.read_hdf(src, key))


def test_csv_real_files(project_a, tmp_path):
    for csv in [*project_a.glob("*/*.csv"), *project_a.glob("labeled-data/*/*.csv")]:
        df = read_tracks_csv(csv)
        h5 = csv.with_suffix(".h5")
        ref = pd.read_hdf(h5)
        assert df.shape == ref.shape
        assert [tuple(map(str, c)) for c in df.columns] == [tuple(map(str, c)) for c in ref.columns]
        np.testing.assert_allclose(df.to_numpy(float), ref.to_numpy(float), rtol=1e-6, equal_nan=True)
        # write -> bytes identical to what DLC's df.to_csv wrote
        write_tracks_csv(tmp_path / csv.name, ref)
        assert (tmp_path / csv.name).read_text() == csv.read_text()
    assert csv_header_rows(next(project_a.glob("labeled-data/*/*.csv"))) == (4, 3)
    assert csv_header_rows(next(project_a.glob("videos/*_el.csv"))) == (4, 1)


@pytest.mark.smoke
def test_example_tracks_roundtrip(tmp_path):
    df = tracks_dataframe(make_example_poses(n_frames=30, n_animals=2, n_bodyparts=3, n_unique=1))
    write_tracks_h5(tmp_path / "t.h5", df)
    write_tracks_csv(tmp_path / "t.csv", df)
    back = read_tracks(tmp_path / "t.h5")
    pd.testing.assert_frame_equal(back, df, check_column_type=False, check_index_type=False)
    c = read_tracks(tmp_path / "t.csv")
    np.testing.assert_array_equal(c.to_numpy(), df.to_numpy())  # repr round-trips float64 exactly
    assert list(c.index) == list(range(30))
    # single-animal layout: 3 header rows
    sa = df.xs("animal0", axis=1, level="individuals", drop_level=True)
    write_tracks_csv(tmp_path / "s.csv", sa)
    assert csv_header_rows(tmp_path / "s.csv") == (3, 1)
    assert read_tracks(tmp_path / "s.csv").shape == sa.shape


@pytest.mark.smoke
def test_empty_table_roundtrip(tmp_path):
    cols = pd.MultiIndex.from_product([["s"], ["ind1"], ["a"], ["x", "y", "likelihood"]],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    df = pd.DataFrame(np.empty((0, 3)), columns=cols)
    write_tracks_h5(tmp_path / "e.h5", df, format="fixed")
    assert read_tracks(tmp_path / "e.h5").shape == (0, 3)


def test_bad_tables(tmp_path, project_a):
    with pytest.raises(FileNotFoundError):
        read_tracks(tmp_path / "none.h5")
    (tmp_path / "e.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_tracks(tmp_path / "e.h5")
    truncate_copy(next(project_a.glob("videos/*_el.h5")), tmp_path / "t.h5", 0.5)
    with pytest.raises(ValueError, match="truncated or corrupt|cannot be read"):
        read_tracks(tmp_path / "t.h5")
    (tmp_path / "x.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_tracks(tmp_path / "x.h5")
    with pytest.raises(ValueError, match="no key 'nope'"):
        read_tracks(next(project_a.glob("videos/*_el.h5")), key="nope")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="header rows"):
        read_tracks(tmp_path / "x.csv")
    with pytest.raises(TypeError, match="DataFrame"):
        write_tracks_h5(tmp_path / "o.h5", np.zeros(3))
    with pytest.raises(ValueError, match="format"):
        write_tracks_h5(tmp_path / "o.h5", pd.DataFrame({"a": [1.0]}), format="csv")
    assert not (tmp_path / "o.h5").exists()


def test_h5_write_is_atomic(tmp_path, monkeypatch):
    df = tracks_dataframe(make_example_poses(n_frames=5, n_animals=1, n_bodyparts=1, n_unique=0))
    write_tracks_h5(tmp_path / "t.h5", df)

    def interrupted(self, path, *a, **k):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_hdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_tracks_h5(tmp_path / "t.h5", df)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_tracks(tmp_path / "t.h5"), df, check_column_type=False, check_index_type=False)
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"]


def _pandas2_python():
    """An interpreter with pandas < 3 (DLC's pin), if this machine has one."""
    import os
    import subprocess
    import sys

    cands = [os.environ.get("MAPOSE_PANDAS2_PYTHON", ""), "/work/venv-pd2/bin/python", "/work/dlcenv/bin/python"]
    if pd.__version__.startswith("2."):
        cands.insert(0, sys.executable)
    for c in cands:
        if c and os.path.exists(c):
            r = subprocess.run([c, "-c", "import pandas, sys; sys.exit(0 if pandas.__version__ < '3' else 1)"],
                               capture_output=True, timeout=120)
            if r.returncode == 0:
                return c
    return None


@pytest.mark.smoke
def test_table_is_stamped_for_pandas2(tmp_path):
    import tables

    df = tracks_dataframe(make_example_poses(n_frames=4, n_animals=2, n_bodyparts=2, n_unique=1))
    write_tracks_h5(tmp_path / "t.h5", df)
    with tables.open_file(str(tmp_path / "t.h5")) as h5:
        assert "pandas_version" in h5.get_node("/tracks")._v_attrs._v_attrnames


@pytest.mark.slow
def test_files_written_here_read_under_pandas2(tmp_path):
    """DLC pins pandas < 3: h5/csv/tracklet pickles written here must load there."""
    import subprocess

    py = _pandas2_python()
    if py is None:
        pytest.skip("no interpreter with pandas < 3 (set MAPOSE_PANDAS2_PYTHON)")
    from mapose.examples import write_example_set

    paths = write_example_set(tmp_path, n_frames=20, n_animals=2, n_bodyparts=3, n_unique=1)
    write_tracks_h5(tmp_path / "fixed.h5", read_tracks(paths["tracks_h5"]), key="df_with_missing", format="fixed")
    code = (
        "import pickle, sys, numpy as np, pandas as pd\n"
        "a = pd.read_hdf(sys.argv[1]); b = pd.read_hdf(sys.argv[2]);"
        "c = pd.read_csv(sys.argv[3], header=[0,1,2,3], index_col=0)\n"
        "t = pickle.load(open(sys.argv[4], 'rb'))\n"
        "assert a.shape == b.shape == c.shape == (20, 21), (a.shape, b.shape, c.shape)\n"
        "assert np.allclose(a.to_numpy(), c.to_numpy(), equal_nan=True)\n"
        "assert isinstance(t['header'], pd.MultiIndex) and len(t['header']) == 12\n"
        "print(a.to_numpy()[~np.isnan(a.to_numpy())].sum())\n"
    )
    r = subprocess.run([py, "-W", "ignore", "-c", code, str(paths["tracks_h5"]), str(tmp_path / "fixed.h5"),
                        str(paths["tracks_csv"]), str(paths["tracklets"])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    here = read_tracks(paths["tracks_h5"]).to_numpy()
    assert float(r.stdout.strip()) == pytest.approx(here[~np.isnan(here)].sum())
