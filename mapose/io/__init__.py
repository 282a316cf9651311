"""DeepLabCut file formats, one module per file kind.

==========================  =====================================================
module                      file
==========================  =====================================================
:mod:`.full_pickle`         ``<video><scorer>_full.pickle`` (pickle or shelve;
                            TF raw-peak and DLC 3 PyTorch layouts)
:mod:`.meta_pickle`         ``_meta.pickle``
:mod:`.assemblies_pickle`   ``_assemblies.pickle`` (TF and PyTorch layouts)
:mod:`.tracklets_pickle`    ``_el.pickle`` / ``_bx.pickle`` / ``_sk.pickle``
:mod:`.tracks_h5`           tracks ``.h5`` (every key DLC uses) and ``.csv``
:mod:`.config`              project ``config.yaml`` (comments and order kept)
:mod:`.inference_cfg`       ``test/inference_cfg.yaml`` (defaults, sanity checks)
:mod:`.pytorch_config`      ``train/pytorch_config.yaml``
:mod:`.project`             model folders, snapshots, scorer names, video lists
:mod:`.summary`             file-kind detection and summaries (``mapose info``)
:mod:`.safe_pickle`         restricted unpickler shared by all pickle readers
:mod:`.atomic`              write-to-temp-then-rename helpers
==========================  =====================================================

Every reader refuses to execute code from a pickle (see :mod:`mapose.io.safe_pickle`)
and every writer writes to a temporary name and renames (see :mod:`mapose.io.atomic`).
Importing this package imports nothing heavy; pandas/tables load with the modules that
need them.
"""
