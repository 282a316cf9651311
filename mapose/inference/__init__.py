"""Video inference with DLC-trained bottom-up models.

* :func:`mapose.inference.analyze.analyze_videos` — DLC 3.0.2's ``analyze_videos``;
* :func:`mapose.inference.export.export_model` — ONNX / DLC-Live export;
* :mod:`~mapose.inference.runners` (torch, ONNX Runtime), :mod:`~mapose.inference.video`
  (threaded decoding), :mod:`~mapose.inference.pipeline` (decode ∥ network ∥ post-processing),
  :mod:`~mapose.inference.predictor` (peaks, PAF costs, assembly, identity).

Nothing heavy is imported here; torch / onnxruntime load when a runner is built.
"""
