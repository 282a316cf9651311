"""Typed gateways to the compiled kernels.

Each ``mapose.kernels.<family>`` module validates shapes and dtypes, makes arrays
contiguous and calls ``mapose._cy.<family>``.  A slow, obviously-correct NumPy
reference with the same signature lives beside it in ``<family>_ref.py``; tests compare
the two.
"""
