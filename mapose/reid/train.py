"""Training the ReID transformer on mined triplets (DLC's ``train_tracking_transformer``).

DLC's recipe (``reid_cfg.yaml``, hard-wired there as here, see :class:`ReIDTrainConfig`):
Adam (one parameter group per tensor, lr 3e-4, L2 weight decay 5e-4 also on biases),
``TripletMarginLoss(margin=1, p=2)`` on the unit embeddings, batches of 64 in file order
(no shuffling), and a per-epoch cosine learning rate with 5 linear warm-up epochs from
``0.01 * lr`` and a period fixed at 200 epochs, floored at ``0.002 * lr``.  Every 10
epochs a checkpoint ``dlc_transreid_<epoch>.pth`` is saved and the triplet accuracy
(anchor closer to positive than to negative) is measured on the held-out triplets; the
accuracies end up in ``dlc_transreid_results.pickle``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ReIDTrainConfig", "learning_rate", "split_train_test", "train_tracking_transformer",
           "train_on_triplets"]


@dataclass(frozen=True)
class ReIDTrainConfig:
    """DLC's ``reid_cfg.yaml`` training settings."""

    base_lr: float = 3e-4
    weight_decay: float = 5e-4
    weight_decay_bias: float = 5e-4
    bias_lr_factor: float = 1.0
    warmup_epochs: int = 5
    cosine_epochs: int = 200  # DLC's create_scheduler default, whatever train_epochs is
    checkpoint_period: int = 10
    eval_period: int = 10
    margin: float = 1.0


def learning_rate(epoch: int, base_lr: float, cfg: ReIDTrainConfig = ReIDTrainConfig()) -> float:
    """Learning rate of (1-based) ``epoch``: linear warm-up, then one cosine half-period."""
    lr_min, lr_init = 0.002 * base_lr, 0.01 * base_lr
    if epoch < cfg.warmup_epochs:
        return lr_init + epoch * (base_lr - lr_init) / cfg.warmup_epochs
    if epoch >= cfg.cosine_epochs:  # one cycle only
        return lr_min
    return lr_min + 0.5 * (base_lr - lr_min) * (1 + math.cos(math.pi * epoch / cfg.cosine_epochs))


def split_train_test(npy_list, train_frac: float, random_state=None):
    """Per file, a random ``train_frac`` share of the triplets for training (DLC).

    Returns
    -------
    train, test : ndarray of shape (n, 3, K, C), float64
    """
    from mapose.reid.triplets import as_random_state

    rng = as_random_state(random_state)
    train, test = [], []
    for npy in npy_list:
        vectors = np.load(npy, mmap_mode="r")
        if vectors.ndim != 4 or vectors.shape[1] != 3:
            raise ValueError(f"{npy} holds an array of shape {vectors.shape}; expected triplets "
                             "(n, 3, n_keypoints, n_features). Re-run create_tracking_dataset.")
        order = rng.permutation(vectors.shape[0])
        n_train = int(vectors.shape[0] * train_frac)
        train.append(np.asarray(vectors[order[:n_train]]))
        test.append(np.asarray(vectors[order[n_train:]]))
    return np.concatenate(train, axis=0), np.concatenate(test, axis=0)


def _acc(correct: int, total: int) -> float:
    # DLC divides a float32 tensor count: the accuracies it pickles are float32 values
    return float(np.float32(correct) / np.float32(total))


def _batches(arr: np.ndarray, batch_size: int):
    for s in range(0, len(arr), batch_size):
        yield arr[s:s + batch_size]


def train_on_triplets(train: np.ndarray, test: np.ndarray, ckpt_folder, train_epochs: int = 100,
                      batch_size: int = 64, cfg: ReIDTrainConfig = ReIDTrainConfig(),
                      device=None, progress: bool = False) -> dict:
    """Train a fresh :class:`~mapose.reid.model.DLCTransReID` (DLC's ``do_dlc_train``).

    Parameters
    ----------
    train, test : ndarray of shape (n, 3, K, C)
        Triplet features; ``test`` may be empty (its accuracy is then NaN; DLC crashes).
    ckpt_folder : str or os.PathLike
        Receives ``dlc_transreid_<epoch>.pth`` every ``cfg.checkpoint_period`` epochs and
        ``dlc_transreid_results.pickle``.

    Returns
    -------
    dict
        ``{"train_acc": [per epoch], "test_acc": [per evaluation], "epochs": [1..]}``.
    """
    from mapose._optional import require
    from mapose.inference.runners import resolve_device
    from mapose.io.safe_pickle import write_pickle
    from mapose.reid.model import DLCTransReID, save_checkpoint

    torch = require("torch", "training the ReID transformer")
    if train.ndim != 4 or train.shape[1] != 3 or len(train) == 0:
        raise ValueError(f"no training triplets (shape {train.shape}): mine more triplets "
                         "(n_triplets) or raise train_frac.")
    folder = Path(os.fspath(ckpt_folder))
    folder.mkdir(parents=True, exist_ok=True)
    dev = torch.device(resolve_device(device))
    num_kpts, feature_dim = int(train.shape[2]), int(train.shape[3])
    model = DLCTransReID(feature_dim, num_kpts).to(dev)
    groups = []
    for name, param in model.named_parameters():
        bias = "bias" in name
        groups.append({"params": [param],
                       "lr": cfg.base_lr * (cfg.bias_lr_factor if bias else 1.0),
                       "weight_decay": cfg.weight_decay_bias if bias else cfg.weight_decay})
    optimizer = torch.optim.Adam(groups)
    base_lrs = [g["lr"] for g in groups]
    loss_fn = torch.nn.TripletMarginLoss(margin=cfg.margin, p=2)

    def embed(batch):
        t = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(dev)
        return model(t[:, 0]), model(t[:, 1]), model(t[:, 2])

    def n_correct(a, p, n):
        return int(torch.sum(torch.sqrt(torch.sum((a - p) ** 2, 1))
                             < torch.sqrt(torch.sum((a - n) ** 2, 1))))

    history = {"train_acc": [], "test_acc": [], "epochs": []}
    for epoch in range(1, int(train_epochs) + 1):
        history["epochs"].append(epoch)
        for g, lr in zip(optimizer.param_groups, base_lrs):
            g["lr"] = learning_rate(epoch, lr, cfg)
        model.train()
        correct = 0
        # DLC iterates a torch DataLoader, whose iterator draws a base seed from the global
        # generator on creation; drawing it too keeps stochastic depth on DLC's random stream
        # (same seed, same triplets -> DLC's weights)
        torch.empty((), dtype=torch.int64).random_()
        for batch in _batches(train, batch_size):
            optimizer.zero_grad()
            a, p, n = embed(batch)
            loss = loss_fn(a, p, n)
            loss.backward()
            optimizer.step()
            correct += n_correct(a.detach(), p.detach(), n.detach())
        train_acc = _acc(correct, len(train))
        history["train_acc"].append(train_acc)
        if epoch % cfg.checkpoint_period == 0:
            save_checkpoint(folder / f"dlc_transreid_{epoch}.pth", model)
        if epoch % cfg.eval_period == 0:
            model.eval()
            correct = 0
            torch.empty((), dtype=torch.int64).random_()  # the validation loader's seed draw
            with torch.no_grad():
                for batch in _batches(test, batch_size):
                    correct += n_correct(*embed(batch))
            test_acc = _acc(correct, len(test)) if len(test) else float("nan")
            history["test_acc"].append(test_acc)
            if progress:
                print(f"Epoch {epoch}, train acc: {train_acc:.2f}")
                print(f"Epoch {epoch}, test acc {test_acc:.2f}")
    write_pickle(folder / "dlc_transreid_results.pickle", history)
    return history


def train_tracking_transformer(path_config_file, dlcscorer, videos, video_extensions=None,
                               train_frac=0.8, modelprefix="", train_epochs=100, batch_size=64,
                               ckpt_folder="", destfolder=None, *, random_state=None,
                               seed=None, device=None, progress: bool = True) -> dict:
    """Train the ReID transformer on the videos' ``_triplet_vector.npy`` (DLC's function).

    Parameters follow DeepLabCut's.  Keyword-only additions:

    random_state : None, int or numpy.random.RandomState
        Generator of the train/test split (None: NumPy's global one, as DLC).
    seed : int, optional
        ``torch.manual_seed`` before building the model (DLC leaves torch unseeded).
    device : str, optional
        Torch device; default CUDA when available (DLC).

    Returns
    -------
    dict
        The training history also written to ``dlc_transreid_results.pickle``.
    """
    from mapose.io.project import list_videos
    from mapose.reid.triplets import triplets_path

    if not 0 < float(train_frac) <= 1:
        raise ValueError(f"train_frac must be in (0, 1]; got {train_frac!r}.")
    if isinstance(train_epochs, bool) or not isinstance(train_epochs, (int, np.integer)) or train_epochs < 1:
        raise ValueError(f"train_epochs must be a positive int; got {train_epochs!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    npy_list = []
    for video in list_videos(videos, video_extensions):
        path = triplets_path(video, dlcscorer, destfolder)
        if not path.is_file():
            raise FileNotFoundError(f"triplet file '{path}' not found; run create_tracking_dataset "
                                    "(or transformer_reID) for this video first.")
        npy_list.append(path)
    if not npy_list:
        raise ValueError(f"no videos found in {videos!r} (video_extensions={video_extensions!r}).")
    train, test = split_train_test(npy_list, float(train_frac), random_state)
    if seed is not None:
        from mapose._optional import require

        require("torch", "training the ReID transformer").manual_seed(int(seed))
    folder = ckpt_folder or Path(npy_list[0]).parent
    return train_on_triplets(train, test, folder, int(train_epochs), int(batch_size),
                             device=device, progress=progress)
