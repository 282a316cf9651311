"""Record DeepLabCut 3.0.2's ReID training on generated triplets (runs ONLY in /work/dlcenv).

``/work/dlcenv/bin/python scripts/reid_training_fixture.py tests/data/reid_dlc_training.json``

The triplets are random (NumPy ``default_rng(0)``, shape (40, 3, 5, 16)): 32 for training,
8 for validation, no file split.  DLC's ``do_dlc_train`` runs 20 epochs after
``torch.manual_seed(0)``; the fixture keeps the final weights (all of them: the model is
summarised per tensor: sum, sum of squares, first 8 values) and the accuracy history.  ``tests/test_reid.py`` trains mapose on the same
triplets and compares.
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from deeplabcut.pose_tracking_pytorch.config import cfg
from deeplabcut.pose_tracking_pytorch.datasets import make_dlc_dataloader
from deeplabcut.pose_tracking_pytorch.loss import easy_triplet_loss
from deeplabcut.pose_tracking_pytorch.model import make_dlc_model
from deeplabcut.pose_tracking_pytorch.processor import do_dlc_train
from deeplabcut.pose_tracking_pytorch.solver import make_easy_optimizer
from deeplabcut.pose_tracking_pytorch.solver.scheduler_factory import create_scheduler


def triplets():
    return np.random.default_rng(0).normal(size=(40, 3, 5, 16))


def summary(t):
    v = t.detach().double().numpy().ravel()
    return [float(v.sum()), float((v ** 2).sum())] + v[:8].tolist()


def main(out):
    torch.set_num_threads(1)
    x = triplets()
    train, test = x[:32], x[32:]
    train_loader, val_loader = make_dlc_dataloader(train, test, 64)
    torch.manual_seed(0)
    model = make_dlc_model(cfg, 16, 5)
    optimizer = make_easy_optimizer(cfg, model)
    scheduler = create_scheduler(cfg, optimizer)
    with tempfile.TemporaryDirectory() as tmp:
        do_dlc_train(cfg, model, easy_triplet_loss(), train_loader, val_loader, optimizer, scheduler,
                     5, 16, 1, total_epochs=20, ckpt_folder=tmp)
        import pickle

        with open(Path(tmp) / "dlc_transreid_results.pickle", "rb") as fh:
            history = pickle.load(fh)
    Path(out).write_text(json.dumps({
        "torch": torch.__version__,
        "history": history,
        "state_dict": {k: summary(v) for k, v in model.state_dict().items()},
    }))


if __name__ == "__main__":
    main(sys.argv[1])
