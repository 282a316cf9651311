"""Reading DLC 3 PyTorch snapshots (``snapshot-*.pt``) into mapose models."""
from __future__ import annotations

import os
from pathlib import Path

from mapose._optional import require


def _weights_only_default(pytorch_cfg: dict | None) -> bool:
    runner = (pytorch_cfg or {}).get("runner") or {}
    value = runner.get("load_weights_only")
    if value is None:
        # DLC's rule: env TORCH_LOAD_WEIGHTS_ONLY, default true
        env = os.environ.get("TORCH_LOAD_WEIGHTS_ONLY", "true").strip().lower()
        return env not in ("0", "false", "no")
    return bool(value)


def load_snapshot(path, weights_only: bool | None = None, pytorch_cfg: dict | None = None) -> dict:
    """Load a snapshot dict (``{"model": state_dict, "metadata": ...}``) onto the CPU.

    Parameters
    ----------
    path : str or Path
        ``snapshot-*.pt`` file.
    weights_only : bool, optional
        Passed to :func:`torch.load`; ``None`` applies DLC's rule
        (``runner.load_weights_only`` or env ``TORCH_LOAD_WEIGHTS_ONLY``, default True).
    """
    torch = require("torch", "loading DLC snapshots")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"snapshot file not found: {path}. Train the shuffle first, or "
                                "pass the right shuffle / snapshot_index.")
    if weights_only is None:
        weights_only = _weights_only_default(pytorch_cfg)
    import numpy as np

    # numpy scalars in snapshot metadata (DLC allow-lists them too)
    try:
        from numpy._core.multiarray import scalar as _np_scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar as _np_scalar
    safe = [_np_scalar, np.dtype, np.float64, np.float32, np.int64, np.int32]
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType"):
        if hasattr(np.dtypes, name):
            safe.append(getattr(np.dtypes, name))
    try:
        if weights_only and hasattr(torch.serialization, "safe_globals"):
            with torch.serialization.safe_globals(safe):
                snap = torch.load(path, map_location="cpu", weights_only=True)
        else:
            snap = torch.load(path, map_location="cpu", weights_only=bool(weights_only))
    except Exception as exc:  # corrupt or foreign file
        raise ValueError(
            f"could not read snapshot {path} ({type(exc).__name__}: {exc}). If it was written by "
            "a trusted older DLC, retry with weights_only=False (runner.load_weights_only)."
        ) from exc
    if not isinstance(snap, dict) or "model" not in snap:
        raise ValueError(f"snapshot {path} has no 'model' state_dict; is it a DLC 3 PyTorch snapshot?")
    return snap


def load_pose_model(pytorch_cfg: dict, snapshot_path, weights_only: bool | None = None):
    """Build the PoseModel for ``pytorch_cfg`` and load the snapshot strictly (eval mode).

    Raises
    ------
    ValueError
        If the snapshot does not fit the configuration (e.g. body parts were added to
        ``config.yaml`` after training), with the mismatching keys in the message.
    """
    from mapose.models.pose_model import PoseModel

    torch = require("torch", "loading DLC snapshots")
    snap = load_snapshot(snapshot_path, weights_only, pytorch_cfg)
    # Build on the meta device: no random initialisation of ~25M parameters that the
    # snapshot overwrites anyway (seconds on a small CPU); `assign=True` adopts its tensors.
    with torch.device("meta"):
        model = PoseModel.from_config(pytorch_cfg)
    state = snap["model"]
    # DataParallel snapshots (not written by DLC 3, but seen in the wild)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        msg = str(exc)
        if len(msg) > 1500:
            msg = msg[:1500] + " ..."
        raise ValueError(
            f"snapshot {snapshot_path} does not match its pytorch_config.yaml (body parts, "
            f"individuals or architecture differ): {msg}. Re-create the training set / retrain, "
            "or point to the pytorch_config.yaml the snapshot was trained with."
        ) from exc
    model.eval()
    model.snapshot_metadata = snap.get("metadata", {})
    return model
