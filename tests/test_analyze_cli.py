"""``mapose analyze`` (the batch front end) and ``analyze_videos(scheduler=/cluster=)``."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _batch_helpers as H  # noqa: E402

from mapose.cli import build_parser, main  # noqa: E402

pytestmark = pytest.mark.skipif(not H.PROJECT_A.exists(), reason="project A data not found")

# every analyze_videos option the command exposes (flag -> what it controls)
_OPTIONS = ["--videotype", "--shuffle", "--trainingsetindex", "--snapshot-index", "--destfolder",
            "--modelprefix", "--batch-size", "--device", "--engine", "--half", "--cropping",
            "--save-as-csv", "--save-as-df", "--use-shelve", "--dynamic", "--overwrite",
            "--no-track", "--track-method", "--n-tracks", "--animal-names", "--scheduler",
            "--cluster", "--post-workers", "--retries", "--chunk-frames"]


def _place(video, suffixes):
    for sfx in suffixes:
        (video.parent / (video.stem + H.SCORER + sfx)).write_bytes(H.recorded(sfx).read_bytes())


@pytest.mark.smoke
def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["analyze", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in _OPTIONS:
        assert opt in text, opt


@pytest.mark.smoke
def test_scheduler_and_cluster_are_exclusive(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["analyze", "c.yaml", "v.avi", "--scheduler", "tcp://x:1",
                                   "--cluster", "local:2"])
    assert "not allowed with" in capsys.readouterr().err


def test_every_option_reaches_the_runner(monkeypatch, tmp_path):
    seen = {}

    def fake_run_videos(config, videos, **kw):
        from mapose.batch.runner import BatchResult

        seen.update(kw, config=config, videos=videos)
        return BatchResult(reports=[], scorer="S")

    monkeypatch.setattr("mapose.batch.runner.run_videos", fake_run_videos)
    argv = ["analyze", "cfg.yaml", "a.avi", "dir", "--videotype", "mp4", "--shuffle", "2",
            "--trainingsetindex", "1", "--snapshot-index", "-1", "--destfolder", "out",
            "--modelprefix", "pre", "--batch-size", "1", "--device", "cpu", "--engine", "onnx",
            "--half", "--cropping", "0", "100", "10", "90", "--save-as-csv", "--save-as-df",
            "--use-shelve", "--dynamic", "0.6", "25", "--overwrite", "--no-track",
            "--track-method", "box", "--n-tracks", "2", "--animal-names", "m1", "m2",
            "--cluster", "local:3", "--post-workers", "0", "--retries", "4",
            "--chunk-frames", "500"]
    assert main(argv) == 0
    assert seen["config"] == "cfg.yaml" and seen["videos"] == ["a.avi", "dir"]
    expected = dict(video_extensions="mp4", shuffle=2, trainingsetindex=1, snapshot_index=-1,
                    destfolder="out", modelprefix="pre", overwrite=True, auto_track=False,
                    save_as_csv=True, track_method="box", n_tracks=2, animal_names=["m1", "m2"],
                    cluster="local:3", scheduler=None, post_workers=0, retries=4,
                    chunk_frames=500)
    assert {k: seen[k] for k in expected} == expected
    assert seen["analyze_kwargs"] == {
        "engine": "onnx", "batch_size": 1, "device": "cpu", "cropping": [0, 100, 10, 90],
        "half": True, "save_as_df": True, "use_shelve": True, "dynamic": (True, 0.6, 25)}
    # defaults: torch engine only, tracking on
    seen.clear()
    assert main(["analyze", "cfg.yaml", "a.avi"]) == 0
    assert seen["analyze_kwargs"] == {"engine": "torch"} and seen["auto_track"] is True
    assert seen["snapshot_index"] is None and seen["scheduler"] is None


def test_bad_option_values_are_one_line_errors(capsys):
    assert main(["analyze", "cfg.yaml", "a.avi", "--snapshot-index", "latest"]) == 1
    assert "--snapshot-index" in capsys.readouterr().err
    assert main(["analyze", "cfg.yaml", "a.avi", "--dynamic", "0.5", "2.5"]) == 1
    assert "--dynamic MARGIN" in capsys.readouterr().err


def test_exit_code_one_failure_others_tracked_then_zero(tmp_path, capsys):
    """Real tracking + stitching of a video with DLC's network outputs; a corrupt video
    fails; exit 1, then 0 once it is gone (the finished video is skipped)."""
    pytest.importorskip("mapose.tracking.convert")
    pytest.importorskip("mapose.stitching.api")
    pd = pytest.importorskip("pandas")
    config, (good,) = H.make_project(tmp_path / "proj", names=("a_good",))
    _place(good, H.STAGE_SUFFIXES["analyze"])
    bad = good.parent / "b_bad.avi"
    bad.write_bytes(b"not a video")
    code = main(["analyze", str(config), str(good.parent), "--post-workers", "0"])
    out = capsys.readouterr().out
    assert code == 1
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()
            if line.startswith(("a_good", "b_bad"))}
    assert rows == {"a_good.avi": "resumed", "b_bad.avi": "failed"}
    ours = pd.read_hdf(good.parent / ("a_good" + H.SCORER + "_el.h5"))
    np.testing.assert_array_equal(ours.to_numpy(), pd.read_hdf(H.recorded("_el.h5")).to_numpy())
    # nothing half-written for the failed video (only its progress record)
    assert not list(good.parent.glob("b_bad*.pickle")) + list(good.parent.glob("b_bad*.h5"))
    bad.unlink()
    assert main(["analyze", str(config), str(good.parent)]) == 0
    assert "a_good.avi" in capsys.readouterr().out


@pytest.mark.slow
def test_real_network_through_cli_then_skip(tmp_path, capsys):
    """A 3-frame clip through the command: network (CPU), --no-track, --save-as-df."""
    pytest.importorskip("torch")
    cv2 = pytest.importorskip("cv2")
    config, _ = H.make_project(tmp_path / "proj", names=())
    clip = tmp_path / "proj" / "videos" / "clip.avi"
    cap = cv2.VideoCapture(str(H.PROJECT_A / "videos" / "synthA.avi"))
    frames = [cap.read()[1] for _ in range(3)]
    cap.release()
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"FFV1"), 25,
                             (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(f)
    writer.release()
    argv = ["analyze", str(config), str(clip), "--no-track", "--device", "cpu",
            "--batch-size", "3", "--save-as-df", "--destfolder", str(tmp_path / "out")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "clip.avi" in out and "done" in out
    stem = tmp_path / "out" / ("clip" + H.SCORER)
    for sfx in ["_full.pickle", "_meta.pickle", "_assemblies.pickle", ".h5"]:
        assert Path(str(stem) + sfx).stat().st_size > 0, sfx
    assert not Path(str(stem) + "_el.h5").exists()
    assert main(argv) == 0
    assert "skipped" in capsys.readouterr().out


@pytest.mark.slow
def test_analyze_videos_cluster_delegates_to_batch_runner(tmp_path):
    """analyze_videos(cluster="local:1"): tracking/stitching in a Dask worker, the same
    tracks as DLC; one bad video -> RuntimeError after the good one finished."""
    pytest.importorskip("distributed")
    pytest.importorskip("mapose.tracking.convert")
    pd = pytest.importorskip("pandas")
    from mapose.inference.analyze import analyze_videos

    config, (good,) = H.make_project(tmp_path / "proj", names=("a",))
    _place(good, H.STAGE_SUFFIXES["analyze"])
    scorer = analyze_videos(str(config), [str(good)], cluster="local:1", progress=False)
    assert scorer == H.SCORER
    h5 = good.parent / ("a" + H.SCORER + "_el.h5")
    np.testing.assert_array_equal(pd.read_hdf(h5).to_numpy(),
                                  pd.read_hdf(H.recorded("_el.h5")).to_numpy())
    assert (good.parent / ("a" + H.SCORER + "_progress.json")).is_file()
    (good.parent / "b.avi").write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="1 of 2 videos failed"):
        analyze_videos(str(config), str(good.parent), cluster="local:1", progress=False)


def test_analyze_videos_passes_its_arguments(monkeypatch):
    seen = {}

    def fake(config, videos, **kw):
        seen.update(kw)
        return "S"

    monkeypatch.setattr("mapose.batch.cli.run_from_analyze_videos", fake)
    from mapose.inference.analyze import analyze_videos

    assert analyze_videos("c.yaml", ["v.avi"], videotype="mp4", shuffle=3, batch_size=2,
                          gputouse=0, n_tracks=4, identity_only=True, save_as_df=True,
                          scheduler="tcp://h:8786", engine="onnx") == "S"
    assert seen["scheduler"] == "tcp://h:8786" and seen["cluster"] is None
    assert seen["video_extensions"] == "mp4" and seen["shuffle"] == 3
    assert seen["batch_size"] == 2 and seen["device"] == 0 and seen["n_tracks"] == 4
    assert seen["identity_only"] is True and seen["save_as_df"] is True
    assert seen["engine"] == "onnx" and seen["auto_track"] is True
    with pytest.raises(ValueError, match="engine"):
        analyze_videos("c.yaml", ["v.avi"], cluster="local:1", engine="tensorrt")
