"""DeepLabCut-compatible module path ``deeplabcut.refine_training_dataset``."""
