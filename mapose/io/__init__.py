"""DeepLabCut file formats, one module per file kind.

Every reader refuses to execute code from a pickle (see :mod:`mapose.io.safe_pickle`)
and every writer writes to a temporary name and renames (see :mod:`mapose.io.atomic`).
"""
