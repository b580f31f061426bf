"""Property-based tests (hypothesis) of the loaders and the CSV readers/writers."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, scalar_dtypes

from aecluster.csvio import read_pairs, read_predictions, write_columns, write_predictions
from aecluster.data import load_images
from aecluster.errors import UserInputError

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(labels=st.lists(st.integers(0, 1), min_size=1, max_size=200))
def test_predictions_round_trip(tmp_path, labels):
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


@FAST
@given(text=st.text(max_size=200))
def test_pairs_reader_never_crashes_on_garbage(tmp_path, text):
    path = tmp_path / "garbage.csv"
    path.write_text(text)
    try:
        values = read_pairs(path, 10)
    except UserInputError:
        return
    assert values.shape[1] == 3 and ((values[:, 1:] >= 0) & (values[:, 1:] < 10)).all()


@FAST
@given(array=arrays(scalar_dtypes(), array_shapes(min_dims=1, max_dims=4, max_side=6)))
def test_loader_accepts_only_valid_image_arrays(tmp_path, array):
    path = tmp_path / "x.npy"
    np.save(path, array)
    try:
        images = load_images(path)
    except UserInputError as error:
        assert str(path) in str(error) and "expected" in str(error)
        return
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3) and len(images) >= 1


@FAST
@given(data=st.binary(max_size=300))
def test_loader_rejects_random_bytes(tmp_path, data):
    path = tmp_path / "x.npy"
    path.write_bytes(data)
    with pytest.raises(UserInputError):
        load_images(path)


@FAST
@given(count=st.integers(1, 5), flat=st.booleans())
def test_loader_accepts_valid_arrays(tmp_path, count, flat):
    images = np.random.default_rng(count).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    path = tmp_path / "x.npy"
    np.save(path, images.reshape(count, -1) if flat else images)
    np.testing.assert_array_equal(load_images(path), images)
