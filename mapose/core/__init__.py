"""DeepLabCut-compatible module paths (``deeplabcut.core.*``) as thin aliases."""
