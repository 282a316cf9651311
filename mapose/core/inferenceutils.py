"""``deeplabcut.core.inferenceutils`` names, for scripts ported with ``import mapose as deeplabcut``.

Everything here is re-exported from :mod:`mapose.assembly`; see there for documentation.
"""
from __future__ import annotations

from mapose.assembly.assembler import Assembler, _conv_square_to_condensed_indices
from mapose.assembly.evaluation import (
    MatchedPrediction,
    _parse_ground_truth_data,
    calc_object_keypoint_similarity,
    evaluate_assembly,
    evaluate_assembly_greedy,
    find_outlier_assemblies,
    match_assemblies,
    parse_ground_truth_data_file,
)
from mapose.assembly.model import Assembly, Joint, Link

__all__ = [
    "Assembler",
    "Assembly",
    "Joint",
    "Link",
    "MatchedPrediction",
    "calc_object_keypoint_similarity",
    "evaluate_assembly",
    "evaluate_assembly_greedy",
    "find_outlier_assemblies",
    "match_assemblies",
    "parse_ground_truth_data_file",
    "_conv_square_to_condensed_indices",
    "_parse_ground_truth_data",
]
