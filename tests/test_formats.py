import numpy as np
import pytest

from shelfwise.datasets.formats import read_user_sequences
from tests.conftest import SHARED_DATA


def test_reads_users_and_items(tmp_path):
    path = tmp_path / "seqs.txt"
    path.write_text("1 10 20 30\n\n2 20 5\n")
    seqs = read_user_sequences(path)
    assert list(seqs.keys) == ["1", "2"]
    assert seqs.n_items == 4  # items 5, 10, 20, 30
    assert [list(seqs.item_ids[s]) for s in (seqs[0], seqs[1])] == [["10", "20", "30"], ["20", "5"]]
    assert seqs.item_ids[0] == ""


@pytest.mark.parametrize("line, problem", [("7 1 x2\n", "'x2' is not an integer"), ("7\n", "expected 'user_id"), ("7 1 -2\n", "'-2'")])
def test_bad_lines_name_file_and_line(tmp_path, line, problem):
    path = tmp_path / "bad.txt"
    path.write_text("1 1 2 3\n" + line)
    with pytest.raises(ValueError) as error:
        read_user_sequences(path)
    assert f"{path}:2" in str(error.value) and problem in str(error.value)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n")
    with pytest.raises(ValueError, match="no sequences"):
        read_user_sequences(path)


@pytest.mark.shared_data
def test_beauty_sizes():
    path = SHARED_DATA / "amazon_beauty" / "Beauty.txt"
    if not path.exists():
        pytest.skip(f"needs {path} (the shared benchmark data is not present)")
    seqs = read_user_sequences(path)
    assert (len(seqs), seqs.n_items, len(seqs.items)) == (22363, 12101, 198502)
    assert np.array_equal(seqs.item_ids[1:4], ["1", "2", "3"])
