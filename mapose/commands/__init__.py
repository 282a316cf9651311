"""Sub-commands of the ``mapose`` console script (see :mod:`mapose.cli`)."""
