"""Unit tests of the `id,label` and `id,image1_index,image2_index` CSV readers and writers in aecluster.csvio."""

import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aecluster.csvio import read_pairs, read_predictions, write_columns, write_predictions
from aecluster.errors import UserInputError, WrongFileError

# Property-based tests (hypothesis): few examples, no deadline (the machine may be loaded).
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def refusal(path, error=UserInputError) -> str:
    """The one-line message with which reading `path` as predictions is refused."""
    with pytest.raises(error) as raised:
        read_predictions(path)
    message = str(raised.value)
    assert len(message.splitlines()) == 1 and message.startswith(f"{path}: "), message
    return message


def test_predictions_file_text(tmp_path):
    write_predictions(tmp_path / "p.csv", np.array([2, 0, 1, 1]))
    assert (tmp_path / "p.csv").read_bytes() == b"id,label\n0,2\n1,0\n2,1\n3,1\n"


def test_predictions_with_file_names(tmp_path):
    write_predictions(tmp_path / "p.csv", np.array([1, 0]), names=["a.png", "b,c.png"])
    assert (tmp_path / "p.csv").read_text() == 'id,label,file\n0,1,a.png\n1,0,"b,c.png"\n'
    assert read_predictions(tmp_path / "p.csv").tolist() == [1, 0]


def test_predictions_round_trip(tmp_path):
    labels = np.array([3, 0, 0, 7, -1, 2, 2])
    write_predictions(tmp_path / "p.csv", labels)
    read = read_predictions(tmp_path / "p.csv")
    assert read.dtype == np.int64 and read.tolist() == [3, 0, 0, 7, -1, 2, 2]


def test_write_replaces_an_existing_file(tmp_path):
    (tmp_path / "p.csv").write_text("old contents, much longer than the new ones\n" * 10)
    write_predictions(tmp_path / "p.csv", np.array([5]))
    assert (tmp_path / "p.csv").read_text() == "id,label\n0,5\n"


def test_write_columns_text_and_integers(tmp_path):
    write_columns(tmp_path / "t.csv", ("id", "name", "n"), [np.array([0, 1]), ["x", "y z"], [np.int32(4), 5]])
    assert (tmp_path / "t.csv").read_text() == "id,name,n\n0,x,4\n1,y z,5\n"


def test_write_columns_of_unequal_lengths_writes_nothing(tmp_path):
    (tmp_path / "p.csv").write_text("keep\n")
    with pytest.raises(ValueError):
        write_columns(tmp_path / "p.csv", ("id", "label"), [np.arange(3), np.arange(2)])
    assert (tmp_path / "p.csv").read_text() == "keep\n" and os.listdir(tmp_path) == ["p.csv"]


def test_write_to_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        write_predictions(tmp_path / "no" / "p.csv", np.array([1]))


def test_rows_are_ordered_by_id(tmp_path):
    (tmp_path / "p.csv").write_text("id,label\n2,5\n0,3\n1,4\n")
    assert read_predictions(tmp_path / "p.csv").tolist() == [3, 4, 5]


@pytest.mark.parametrize("text", [
    "id,label\r\n0,1\r\n1,0\r\n",  # Windows line ends
    "\ufeffid,label\n0,1\n1,0\n",  # byte-order mark
    "id, label\n 0 , 1\n1,0",  # spaces around cells, no final newline
    "id,label\n\n0,1\n\n1,0\n\n",  # blank lines
    "id,label,file\n0,1,a.png\n1,0,b.png\n",  # file names
])
def test_tolerated_spellings(tmp_path, text):
    (tmp_path / "p.csv").write_bytes(text.encode())
    assert read_predictions(tmp_path / "p.csv").tolist() == [1, 0]


def test_missing_file(tmp_path):
    assert refusal(tmp_path / "p.csv") == f"{tmp_path / 'p.csv'}: no such file"


def test_empty_file_is_a_wrong_file(tmp_path):
    (tmp_path / "p.csv").write_text("")
    message = refusal(tmp_path / "p.csv", WrongFileError)
    assert message == f"{tmp_path / 'p.csv'}: found an empty file, expected a CSV file with header 'id,label'"


def test_npy_array_is_a_wrong_file(tmp_path):
    np.save(tmp_path / "p.npy", np.arange(3))
    with pytest.raises(WrongFileError) as error:
        read_predictions(tmp_path / "p.npy")
    assert error.value.found == "a .npy array" and error.value.expected == "a text file"
    assert str(error.value).startswith(f"{tmp_path / 'p.npy'}: found a .npy array, expected a CSV file")


def test_folder_is_refused(tmp_path):
    (tmp_path / "p.csv").mkdir()
    assert "found a folder" in refusal(tmp_path / "p.csv", WrongFileError)


def test_wrong_header(tmp_path):
    (tmp_path / "p.csv").write_text("image,cluster\n0,1\n")
    assert refusal(tmp_path / "p.csv").endswith(": header is 'image,cluster', expected 'id,label'")


def test_header_without_rows(tmp_path):
    (tmp_path / "p.csv").write_text("id,label\n\n")
    assert refusal(tmp_path / "p.csv").endswith(": no rows after the header")


@pytest.mark.parametrize("row", ["1,x", "1,1.0", "1,", "1", "1,+2", "1,1e3", "1,\u0663", "1,1234567890123456789"])
def test_non_integer_cells_name_the_line(tmp_path, row):
    (tmp_path / "p.csv").write_text(f"id,label\n0,1\n\n{row}\n", encoding="utf-8")
    assert refusal(tmp_path / "p.csv").endswith(
        f": line 4 is {row!r}, expected 2 integers (ASCII digits, at most 18 of them)")


def test_eighteen_digits_are_read_exactly(tmp_path):
    (tmp_path / "p.csv").write_text("id,label\n0,-999999999999999999\n")
    assert read_predictions(tmp_path / "p.csv").tolist() == [-999999999999999999]


def test_extra_cell_is_refused_not_cut(tmp_path):
    (tmp_path / "p.csv").write_text("id,label\n0,1,7\n")
    assert refusal(tmp_path / "p.csv").endswith(
        ": line 2 has 3 cells '0,1,7', but the header 'id,label' has 2 columns; expected one cell per column")


def test_trailing_comma_gets_a_hint(tmp_path):
    (tmp_path / "p.csv").write_text("id,label\n0,1\n1,0,\n")
    assert refusal(tmp_path / "p.csv").endswith("expected one cell per column (a trailing comma?)")


def test_missing_file_name_cell_is_refused(tmp_path):
    (tmp_path / "p.csv").write_text("id,label,file\n0,1,a.png\n1,0\n")
    assert ": line 3 has 2 cells '1,0'" in refusal(tmp_path / "p.csv")


@pytest.mark.parametrize("ids", [[0, 0, 1], [1, 2, 3], [0, 1, 3], [-1, 0, 1]])
def test_ids_must_be_zero_to_n_minus_one_once_each(tmp_path, ids):
    (tmp_path / "p.csv").write_text("id,label\n" + "".join(f"{i},0\n" for i in ids))
    assert refusal(tmp_path / "p.csv").endswith(": ids must be 0..2, each exactly once")


def test_pairs_are_read_in_file_order(tmp_path):
    (tmp_path / "pairs.csv").write_text("id,image1_index,image2_index\n7,0,4\n3,4,4\n")
    pairs = read_pairs(tmp_path / "pairs.csv", n_images=5)
    assert pairs.shape == (2, 3) and pairs.tolist() == [[7, 0, 4], [3, 4, 4]]


def test_pairs_round_trip_through_write_columns(tmp_path):
    columns = [np.array([0, 1, 2]), np.array([5, 0, 9]), np.array([1, 1, 0])]
    write_columns(tmp_path / "pairs.csv", ("id", "image1_index", "image2_index"), columns)
    assert (tmp_path / "pairs.csv").read_text() == "id,image1_index,image2_index\n0,5,1\n1,0,1\n2,9,0\n"
    assert read_pairs(tmp_path / "pairs.csv", 10).tolist() == [[0, 5, 1], [1, 0, 1], [2, 9, 0]]


def test_pairs_repeated_id_names_both_lines(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("id,image1_index,image2_index\n5,0,1\n6,1,2\n\n5,2,3\n")
    with pytest.raises(UserInputError) as error:
        read_pairs(path, 10)
    assert str(error.value) == f"{path}: id 5 appears on lines 2 and 5; expected each id once"


@pytest.mark.parametrize("row, images", [("1,0,10", "0 and 10"), ("1,-1,3", "-1 and 3")])
def test_pairs_index_out_of_range_names_the_line(tmp_path, row, images):
    path = tmp_path / "pairs.csv"
    path.write_text(f"id,image1_index,image2_index\n0,0,9\n{row}\n2,12,12\n")
    with pytest.raises(UserInputError) as error:
        read_pairs(path, 10)
    assert str(error.value) == (f"{path}: line 3 pairs images {images}, but indices must lie in 0..9 "
                                "(2 such rows)")


def test_pairs_refuse_a_file_name_column(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("id,image1_index,image2_index,file\n0,0,1,a.png\n")
    with pytest.raises(UserInputError, match="header is 'id,image1_index,image2_index,file'"):
        read_pairs(path, 10)


def test_pairs_header_is_checked(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("id,label\n0,1\n")
    with pytest.raises(UserInputError) as error:
        read_pairs(path, 10)
    assert str(error.value) == f"{path}: header is 'id,label', expected 'id,image1_index,image2_index'"


@FAST
@given(labels=st.lists(st.integers(0, 1), min_size=1, max_size=200))
def test_any_binary_predictions_round_trip(tmp_path, labels):
    path = tmp_path / "pred.csv"
    write_predictions(path, np.array(labels))
    np.testing.assert_array_equal(read_predictions(path), labels)


@FAST
@given(rows=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=50))
def test_pairs_round_trip(tmp_path, rows):
    path = tmp_path / "pairs.csv"
    ids = np.arange(len(rows))
    write_columns(path, ("id", "image1_index", "image2_index"),
                  [ids, [r[0] for r in rows], [r[1] for r in rows]])
    values = read_pairs(path, 10)
    np.testing.assert_array_equal(values[:, 1:], np.array(rows))


PAIRS_HEADER = "id,image1_index,image2_index\n"
# Rows of small integers: ids sometimes repeated, indices sometimes outside 0..9.
pair_rows = st.lists(st.tuples(st.integers(-2, 12), st.integers(-2, 12), st.integers(-2, 12)), max_size=6)


def pairs_text(rows) -> str:
    return PAIRS_HEADER + "".join(f"{a},{b},{c}\n" for a, b, c in rows)


@FAST
@given(text=st.one_of(st.text(max_size=200), pair_rows.map(pairs_text)))
@example(text=PAIRS_HEADER + "0,1,2\n1,9,0\n")  # both branches run every time
@example(text="id,label\n0,1\n")
def test_pairs_reader_never_crashes_on_garbage(tmp_path, text):
    path = tmp_path / "garbage.csv"
    path.write_text(text)
    try:
        values = read_pairs(path, 10)
    except UserInputError:
        return
    assert values.shape[1] == 3 and ((values[:, 1:] >= 0) & (values[:, 1:] < 10)).all()


@FAST
@given(rows=pair_rows)
@example(rows=[(0, 1, 2), (5, 9, 0)])
@example(rows=[(0, 1, 2), (0, 3, 4)])
def test_pairs_reader_accepts_exactly_distinct_ids_and_indices_in_range(tmp_path, rows):
    path = tmp_path / "pairs.csv"
    path.write_text(pairs_text(rows))
    ids = [row[0] for row in rows]
    valid = rows and len(set(ids)) == len(ids) and all(0 <= index < 10 for row in rows for index in row[1:])
    if valid:
        np.testing.assert_array_equal(read_pairs(path, 10), np.array(rows))
    else:
        with pytest.raises(UserInputError, match=f"^{re.escape(str(path))}: "):
            read_pairs(path, 10)
