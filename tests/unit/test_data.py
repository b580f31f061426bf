import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, scalar_dtypes
from PIL import Image

from aecluster.data import (
    compute_in_batches,
    iter_batches,
    load_images,
    load_labels,
    square_resize,
    to_tensor,
    validate_images,
)
from aecluster.errors import UserInputError

# Property-based tests (hypothesis): few examples, no deadline (the machine may be loaded).
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_npy_is_memory_mapped(image_files):
    images = load_images(image_files[0])
    assert isinstance(images, np.memmap)
    assert images.shape == (64, 32, 32, 3) and images.dtype == np.uint8


def test_flat_form_is_reshaped(two_groups):
    flat = two_groups[0].reshape(64, -1)
    assert validate_images(flat).shape == (64, 32, 32, 3)


@pytest.mark.parametrize("array, found", [
    (np.zeros((4, 32, 32), np.uint8), "shape (4, 32, 32) dtype uint8"),
    (np.zeros((4, 32, 32, 3), np.float32), "dtype float32"),
    (np.zeros((4, 28, 28, 3), np.uint8), "shape (4, 28, 28, 3)"),
])
def test_bad_arrays_name_file_and_shape(tmp_path, array, found):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(UserInputError) as error:
        load_images(path)
    assert str(path) in str(error.value) and found in str(error.value)
    assert "expected shape (N, 32, 32, 3) dtype uint8" in str(error.value)


def test_float_images_are_told_how_to_convert(two_groups):
    floats = two_groups[0] / 255.0
    with pytest.raises(UserInputError) as error:
        validate_images(floats, "X.npy")
    message = str(error.value)
    assert message.startswith("X.npy: found shape (64, 32, 32, 3) dtype float64, expected shape (N, 32, 32, 3) "
                              "dtype uint8; convert floats in [0, 1] with (x * 255).round().astype(np.uint8)")
    assert len(message.splitlines()) == 1
    assert np.array_equal(validate_images((floats * 255).round().astype(np.uint8)), two_groups[0])
    with pytest.raises(UserInputError) as error:
        validate_images(two_groups[0].astype(np.int64))
    assert "convert" not in str(error.value)


def test_empty_and_missing(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 32, 32, 3), np.uint8))
    with pytest.raises(UserInputError, match="found 0 images, expected at least 1"):
        load_images(tmp_path / "empty.npy")
    with pytest.raises(UserInputError, match="no such file"):
        load_images(tmp_path / "missing.npy")


def test_corrupt_npy(tmp_path):
    path = tmp_path / "corrupt.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UserInputError, match="not a readable .npy"):
        load_images(path)


def test_folder_sorted_cropped_resized(tmp_path):
    Image.new("RGB", (64, 40), (255, 0, 0)).save(tmp_path / "b.png")
    Image.new("RGB", (32, 32), (0, 0, 255)).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("ignored")
    images = load_images(tmp_path)
    assert images.shape == (2, 32, 32, 3)
    assert images[0, ..., 2].mean() > 200 and images[1, ..., 0].mean() > 200


def test_sixteen_bit_greyscale_is_scaled_not_clipped_white(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    Image.fromarray((ramp // 257).astype(np.uint8)).save(tmp_path / "shallow.png")
    Image.fromarray(np.full((32, 32), 514, np.uint16)).save(tmp_path / "zdark.png")
    deep, shallow, dark = load_images(tmp_path)
    assert deep.min() == 0 and deep.max() == 255
    assert np.abs(deep.astype(int) - shallow.astype(int)).max() <= 1
    assert np.all(dark == 2)


def test_folder_with_unreadable_image(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserInputError, match="broken.png: unreadable image"):
        load_images(tmp_path)


def test_square_resize_crops_center():
    image = Image.new("RGB", (96, 32), (0, 0, 0))
    image.paste((255, 255, 255), (32, 0, 64, 32))
    assert square_resize(image).min() > 250


def test_labels_length_checked(tmp_path):
    np.save(tmp_path / "y.npy", np.zeros(3, np.int64))
    with pytest.raises(UserInputError, match="found 3 labels, expected 5"):
        load_labels(tmp_path / "y.npy", 5)


def test_batches_and_tensor_range(two_groups):
    batches = list(iter_batches(two_groups[0], 30))
    assert [len(b) for b in batches] == [30, 30, 4]
    tensor = to_tensor(batches[0])
    assert tensor.shape == (30, 3, 32, 32)
    assert tensor.min() >= -1 and tensor.max() <= 1


def test_batches_of_a_memory_mapped_file_are_exact_and_released(tmp_path):
    import mmap

    class RecordingMapping:
        def __init__(self, mapping):
            self.mapping = mapping

        def madvise(self, *args):
            released.append(args)
            return self.mapping.madvise(*args)

    images = np.random.default_rng(0).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "X.npy", images)
    mapped = load_images(tmp_path / "X.npy")
    released = []
    mapped._mmap = RecordingMapping(mapped._mmap)
    batches = list(iter_batches(mapped, 7))
    assert np.array_equal(np.concatenate(batches), images)
    assert released and all(start % mmap.PAGESIZE == 0 and length % mmap.PAGESIZE == 0
                            for _, start, length in released)
    assert np.array_equal(np.asarray(mapped), images)
    released.clear()
    editable = np.load(tmp_path / "X.npy", mmap_mode="c")
    editable[:] = 0
    editable._mmap = RecordingMapping(editable._mmap)
    assert not np.concatenate(list(iter_batches(editable, 7))).any() and not released


def test_compute_in_batches_matches_one_pass_and_keeps_no_graph():
    import torch

    images = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    layer = torch.nn.Conv2d(3, 2, 3)
    out = compute_in_batches(layer, images, "cpu", batch_size=3)
    with torch.no_grad():
        expected = layer(to_tensor(images))
    assert out.shape == (7, 2, 30, 30) and not out.requires_grad
    assert torch.allclose(out, expected, atol=1e-6)


def test_a_nested_bar_is_drawn_on_a_terminal_only(capsys, monkeypatch):
    import sys

    import torch

    images = np.zeros((4, 32, 32, 3), np.uint8)
    for leave, terminal, drawn in ((True, False, True), (False, False, False), (False, True, True)):
        monkeypatch.setattr(sys.stderr, "isatty", lambda terminal=terminal: terminal)
        compute_in_batches(torch.nn.Identity(), images, "cpu", batch_size=2, progress=True, desc="inner", leave=leave)
        assert ("inner" in capsys.readouterr().err) == drawn, (leave, terminal)


# What an images file may hold and what it nearly holds: N images of 32 x 32 x 3 values, or the
# same flat (N, 3072), and shapes one value or one axis off, in uint8 and in other dtypes.
IMAGE_TAILS = [(32, 32, 3), (3072,), (32, 32, 4), (3, 32, 32), (32, 32), (3071,), (32, 32, 3, 1)]
IMAGE_DTYPES = [np.uint8, np.int8, np.uint16, np.int64, np.float32, np.float64, np.bool_]
image_like_arrays = st.builds(lambda n, tail: (n, *tail), st.integers(0, 3),
                              st.one_of(st.sampled_from(IMAGE_TAILS[:2]), st.sampled_from(IMAGE_TAILS))).flatmap(
    lambda shape: arrays(st.one_of(st.just(np.uint8), st.sampled_from(IMAGE_DTYPES)), shape))


@FAST
@given(array=st.one_of(arrays(scalar_dtypes(), array_shapes(min_dims=1, max_dims=4, max_side=6)), image_like_arrays))
@example(array=np.arange(2 * 3072).reshape(2, 32, 32, 3).astype(np.uint8))  # both branches run every time
@example(array=np.arange(3072).reshape(1, 3072).astype(np.uint8))
@example(array=np.zeros((0, 32, 32, 3), dtype=np.uint8))
@example(array=np.zeros((2, 32, 32, 3), dtype=np.float32))
def test_loader_accepts_only_valid_image_arrays(tmp_path, array):
    """A .npy array is images exactly when it is uint8 of shape (N, 32, 32, 3) or (N, 3072) with
    N >= 1; those come back as (N, 32, 32, 3) with the same values, all others are refused in a
    message naming the file and what was expected."""
    path = tmp_path / "x.npy"
    np.save(path, array)
    valid = array.dtype == np.uint8 and array.shape[1:] in ((32, 32, 3), (3072,)) and len(array) >= 1
    if valid:
        images = load_images(path)
        assert images.dtype == np.uint8 and images.shape == (len(array), 32, 32, 3)
        np.testing.assert_array_equal(images, array.reshape(len(array), 32, 32, 3))
    else:
        with pytest.raises(UserInputError) as raised:
            load_images(path)
        assert str(path) in str(raised.value) and "expected" in str(raised.value)


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

