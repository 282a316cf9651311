"""DeepLabCut-compatible module path ``deeplabcut.pose_tracking_pytorch``."""
from mapose.reid.api import create_tracking_dataset, transformer_reID
from mapose.reid.train import train_tracking_transformer
from mapose.reid.triplets import (create_train_using_pickle, create_triplets_dataset,
                                  generate_train_triplets_from_pickle, save_train_triplets)

__all__ = ["create_tracking_dataset", "create_train_using_pickle", "create_triplets_dataset",
           "generate_train_triplets_from_pickle", "save_train_triplets",
           "train_tracking_transformer", "transformer_reID"]
