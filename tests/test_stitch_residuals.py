"""Where leftover residuals go after stitching (``_finalize_tracks``).

Each case's expected track lengths were produced by running DeepLabCut 3.0.2's
``TrackletStitcher._finalize_tracks`` on the same hand-made tracks and residuals
(one body part at a constant x per piece), including its quirks: residuals outside a
track's frame range are not placed, and with several eligible tracks the arg-min over the
candidate list indexes the full track list.
"""
import numpy as np
import pytest

from mapose.stitching.stitcher import TrackletStitcher
from mapose.stitching.tracklet import Tracklet


def T(s, e, x, skip=()):
    inds = np.array([i for i in range(s, e + 1) if i not in skip])
    d = np.zeros((len(inds), 1, 3))
    d[:, 0, 0] = x
    d[:, 0, 2] = 1
    return Tracklet(d, inds)


def H(s, e, x):  # track with a hole where residuals fit
    return T(s, e, x, skip=range(20, 25))


CASES = {
    # name: (tracks, residuals, expected [(len, mean x)] per track)
    "closest_of_two": ([H(0, 50, 0), H(0, 50, 10)], [T(20, 24, 9)], [(46, 0.0), (51, 9.901960784313726)]),
    "closest_of_three": ([H(0, 50, 0), H(0, 50, 5), H(0, 50, 10)], [T(20, 24, 9)],
                         [(46, 0.0), (46, 5.0), (51, 9.901960784313726)]),
    "after_all_tracks": ([T(0, 30, 0), T(0, 30, 10)], [T(31, 35, 9)], [(31, 0.0), (31, 10.0)]),
    "before_all_tracks": ([T(10, 30, 0), T(10, 30, 10)], [T(2, 5, 9)], [(21, 0.0), (21, 10.0)]),
    "single_frame_dropped": ([T(0, 30, 0)], [T(31, 31, 9)], [(31, 0.0)]),
    "fits_nowhere": ([T(0, 30, 0), T(0, 30, 5)], [T(10, 12, 9)], [(31, 0.0), (31, 5.0)]),
    "right_side_when_left_far": ([T(0, 50, 0, skip=range(10, 25)), T(0, 50, 10, skip=range(10, 25))], [T(20, 22, 9)],
                                 [(36, 0.0), (39, 9.923076923076923)]),
    "left_side_when_near": ([T(0, 50, 0, skip=range(18, 40)), T(0, 50, 10, skip=range(18, 40))], [T(20, 22, 1)],
                            [(32, 0.09375), (29, 10.0)]),
    "unique_fit_first": ([T(0, 50, 0, skip=range(20, 30)), H(0, 50, 10)], [T(20, 24, 9), T(25, 29, 9)],
                         [(46, 0.9782608695652174), (51, 9.901960784313726)]),
    "both_sides_summed": ([T(0, 19, 9) + T(30, 50, 30), T(0, 19, 12) + T(30, 50, 12)], [T(24, 26, 9)],
                          [(41, 19.75609756097561), (44, 11.795454545454545)]),
    "candidate_index_quirk": ([T(0, 50, 0), H(0, 50, 100), H(0, 50, 9)], [T(20, 24, 9)],
                              [(51, 0.0), (51, 91.07843137254902), (46, 9.0)]),
    "ineligible_track_keeps_slot": ([T(30, 50, 9), H(0, 50, 100), H(0, 50, 9)], [T(20, 24, 9)],
                                    [(21, 9.0), (46, 100.0), (51, 9.0)]),
    "longest_first": ([T(0, 50, 0, skip=range(20, 30)), T(0, 50, 10, skip=range(20, 30))], [T(20, 22, 9), T(23, 29, 1)],
                      [(48, 0.14583333333333334), (44, 9.931818181818182)]),
    "needs_frames_on_both_sides": ([T(0, 21, 0), T(0, 50, 10, skip=range(22, 25))], [T(22, 24, 1)],
                                   [(22, 0.0), (51, 9.470588235294118)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_residual_placement_as_dlc(name):
    tracks, residuals, expected = CASES[name]
    st = TrackletStitcher([T(0, 20, 0)], 1)
    st.tracks = np.empty(len(tracks), dtype=object)
    st.tracks[:] = tracks
    st.residuals = residuals
    st._finalize_tracks()
    got = [(len(t), float(np.nanmean(t.xy[..., 0]))) for t in st.tracks]
    assert [g[0] for g in got] == [e[0] for e in expected]
    np.testing.assert_allclose([g[1] for g in got], [e[1] for e in expected], rtol=1e-12)
