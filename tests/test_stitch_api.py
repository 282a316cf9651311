"""stitch_tracklets end to end on DLC 3.0.2 project A, its errors, and the CLI."""
import filecmp
import shutil

import numpy as np
import pandas as pd
import pytest

import mapose
from mapose.cli import main as cli_main

STEM = "synthADLC_Resnet50_projANov23shuffle1_snapshot_best-50"


@pytest.fixture
def project(project_a, tmp_path):
    """A writable copy of project A's config, model folder link and tracklet pickle."""
    root = tmp_path / "projA"
    (root / "videos").mkdir(parents=True)
    shutil.copy(project_a / "config.yaml", root / "config.yaml")
    (root / "dlc-models-pytorch").symlink_to(project_a / "dlc-models-pytorch")
    shutil.copy(project_a / "videos" / f"{STEM}_el.pickle", root / "videos")
    (root / "videos" / "synthA.avi").symlink_to(project_a / "videos" / "synthA.avi")
    return root


def test_public_names():
    from mapose.refine_training_dataset import stitch as alias

    assert mapose.stitch_tracklets is alias.stitch_tracklets
    assert mapose.TrackletStitcher is alias.TrackletStitcher
    assert mapose.Tracklet is alias.Tracklet
    assert alias.TRACK_METHODS["ellipse"] == "_el"


def test_project_a_equals_dlc(project, project_a):
    out = mapose.stitch_tracklets(project / "config.yaml", [project / "videos" / "synthA.avi"], save_as_csv=True)
    assert out == [project / "videos" / f"{STEM}_el.h5"]
    got = pd.read_hdf(out[0], key="tracks")
    ref = pd.read_hdf(project_a / "videos" / f"{STEM}_el.h5", key="tracks")
    assert got.columns.equals(ref.columns) and got.index.equals(ref.index)
    np.testing.assert_array_equal(got.to_numpy(), ref.to_numpy())
    assert filecmp.cmp(project / "videos" / f"{STEM}_el.csv", project_a / "videos" / f"{STEM}_el.csv", shallow=False)


def test_project_a_n_tracks_and_names(project):
    video = [project / "videos" / "synthA.avi"]
    from mapose.stitching.stitcher import StitchingWarning

    with pytest.warns(StitchingWarning, match="n_tracks=2"):  # three animals overlap
        out = mapose.stitch_tracklets(project / "config.yaml", video, n_tracks=2, output_name=str(project / "two.h5"))
    df = pd.read_hdf(out[0])
    # config individuals (3) are more than n_tracks: DLC truncates the names
    assert df.columns.get_level_values("individuals").unique().tolist() == ["animal0", "animal1"]
    out = mapose.stitch_tracklets(project / "config.yaml", video, n_tracks=3, animal_names=["a", "b", "c"],
                                  output_name=str(project / "abc.h5"))
    assert pd.read_hdf(out[0]).columns.get_level_values("individuals").unique().tolist() == ["a", "b", "c"]
    out = mapose.stitch_tracklets(project / "config.yaml", video, n_tracks=4, output_name=str(project / "four.h5"))
    assert pd.read_hdf(out[0]).columns.get_level_values("individuals").unique().tolist() == ["ind1", "ind2", "ind3", "ind4"]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(track_method="ctd"), ValueError, "ctd"),
        (dict(track_method="nope"), ValueError, "Invalid track_method"),
        (dict(n_tracks=2, animal_names=["a", "b", "c"]), ValueError, "3 names but n_tracks=2"),
        (dict(n_tracks=0), ValueError, "positive integer"),
        (dict(transformer_checkpoint="x.pth"), FileNotFoundError, "transformer_checkpoint"),
    ],
)
def test_bad_arguments(project, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mapose.stitch_tracklets(project / "config.yaml", [project / "videos" / "synthA.avi"], **kwargs)


def test_missing_pickle_is_skipped(project, capsys):
    (project / "videos" / f"{STEM}_el.pickle").unlink()
    assert mapose.stitch_tracklets(project / "config.yaml", [project / "videos" / "synthA.avi"]) == []
    assert "not found" in capsys.readouterr().out


def test_missing_config():
    with pytest.raises(FileNotFoundError):
        mapose.stitch_tracklets("/nonexistent/config.yaml", ["/nonexistent/v.avi"])


def test_cli(project, capsys):
    rc = cli_main(["stitch", str(project / "config.yaml"), str(project / "videos" / "synthA.avi"), "--save-as-csv"])
    assert rc == 0
    assert f"{STEM}_el.h5" in capsys.readouterr().out
    assert (project / "videos" / f"{STEM}_el.csv").exists()
    rc = cli_main(["stitch", str(project / "config.yaml"), str(project / "nope.avi")])
    assert rc == 1
    assert "Could not find video" in capsys.readouterr().err
