"""Checkpoints of a video analysed with use_shelve=True (the shelve's data file is fingerprinted)."""
import pytest

from mapose.batch.progress import fingerprint, stored_file
from mapose.batch.stages import outputs_readable
from mapose.examples import write_example_set

pytestmark = pytest.mark.smoke


def test_shelve_full_pickle_is_checkpointed(tmp_path):
    paths = write_example_set(tmp_path, n_frames=12)
    shelf = paths["full_shelve"]
    data_file = stored_file(shelf)
    assert data_file.is_file()
    # with a suffix-adding backend the logical name itself is not a file
    assert data_file == shelf or not shelf.exists()
    assert fingerprint(shelf) == fingerprint(data_file)
    assert outputs_readable("analyze", [shelf])

    # corrupting the data file makes the shelve unreadable, so it is never adopted
    with open(data_file, "r+b") as fh:
        fh.truncate(max(1, data_file.stat().st_size // 3))
    if data_file != shelf:
        assert not outputs_readable("analyze", [shelf])


def test_stored_file_of_plain_paths(tmp_path):
    plain = tmp_path / "a_full.pickle"
    assert stored_file(plain) == plain  # missing: the name itself
    plain.write_bytes(b"x")
    assert stored_file(plain) == plain
