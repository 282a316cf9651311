"""DLC's CSV pose tables (4 header rows for multi-animal files); see :mod:`mapose.io.tracks_h5`."""
from mapose.io.tracks_h5 import csv_header_rows, read_tracks_csv, write_tracks_csv

__all__ = ["csv_header_rows", "read_tracks_csv", "write_tracks_csv"]
