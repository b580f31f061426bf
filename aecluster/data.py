"""Loading and validating image arrays: memory-mapped `.npy` files and folders of PNG/JPG files.

Images are kept as (N, 32, 32, 3) uint8 everywhere; conversion to float happens one batch at a
time (`to_tensor`), so a million-image array never lives in memory as float.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aecluster.errors import UserInputError, WrongFileError
from aecluster.files import describe_file

if TYPE_CHECKING:
    import PIL.Image
    import torch

IMAGE_SHAPE = (32, 32, 3)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
logger = logging.getLogger(__name__)


def _describe(array: np.ndarray) -> str:
    return f"shape {tuple(array.shape)} dtype {array.dtype}"


def validate_images(images: np.ndarray, source: str = "array", min_images: int = 1) -> np.ndarray:
    """Check that `images` is (N,32,32,3) uint8 (or flat (N,3072) uint8) and return the 4-D view.

    Parameters
    ----------
    images : ndarray of shape (N, 32, 32, 3) or (N, 3072)
        The images, uint8 (a memory-mapped array is not read).
    source : str, default="array"
        What the images came from, named by an error.
    min_images : int, default=1
        The fewest images accepted.

    Returns
    -------
    ndarray of shape (N, 32, 32, 3)
        `images` itself, or a reshaped view of a flat array (no copy).

    Raises
    ------
    UserInputError
        For something other than a numpy array, another shape or dtype (with how to convert
        float pixels), or fewer than `min_images` images.
    """
    if not isinstance(images, np.ndarray):
        raise UserInputError(f"{source}: expected a numpy array, found {type(images).__name__}")
    if images.ndim == 2 and images.shape[1:] == (int(np.prod(IMAGE_SHAPE)),):
        images = images.reshape((images.shape[0],) + IMAGE_SHAPE)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        # Float images are usually pixels scaled to [0, 1] (or 0..255 kept as floats): say how to convert.
        convert = ("; convert floats in [0, 1] with (x * 255).round().astype(np.uint8), floats in [0, 255] "
                   "with x.round().astype(np.uint8)" if images.dtype.kind == "f" else "")
        raise UserInputError(
            f"{source}: found {_describe(images)}, expected shape (N, 32, 32, 3) dtype uint8{convert}"
        )
    if images.shape[0] < min_images:
        raise UserInputError(
            f"{source}: found {images.shape[0]} images, expected at least {min_images}"
        )
    return images


def validate_labels(labels: Any, source: str = "labels", expected_length: int | None = None) -> np.ndarray:
    """`labels` as a 1-D int64 array (whole-valued floats below 2**53 accepted), optionally of a
    given length; a one-line `UserInputError` naming `source` otherwise (strings, fractions, 2-D, NaN).

    Parameters
    ----------
    labels : array-like of shape (N,)
        Integer, boolean or whole-valued float labels.
    source : str, default="labels"
        What the labels came from, named by an error.
    expected_length : int, optional
        The number of labels required (one per image); None accepts any.

    Returns
    -------
    ndarray of shape (N,)
        The labels as int64 (a copy).

    Raises
    ------
    UserInputError
        For labels that are not 1-D whole numbers, or not `expected_length` of them.
    """
    array = np.asarray(labels)
    whole = array.dtype.kind in "iub" or (
        array.dtype.kind == "f" and bool(np.all(np.abs(array) < 2**53)) and bool(np.all(array == np.round(array))))
    if array.ndim != 1 or not whole:
        raise UserInputError(f"{source}: found {_describe(array)}, expected shape (N,) of integer labels")
    if expected_length is not None and len(array) != expected_length:
        raise UserInputError(f"{source}: found {len(array)} labels, expected {expected_length} (one per image)")
    return array.astype(np.int64)


def load_images(path: str | os.PathLike, min_images: int = 1) -> np.ndarray:
    """Load images from a `.npy` file (memory-mapped) or a folder of PNG/JPG files.

    A folder's .png, .jpg and .jpeg files are read in natural order (`list_image_files`), each
    centre-cropped to a square and resized to 32x32 (`square_resize`); other entries are skipped
    and counted in the log.

    Parameters
    ----------
    path : str or os.PathLike
        A `.npy` file of (N, 32, 32, 3) or (N, 3072) uint8 images, or a folder of image files.
    min_images : int, default=1
        The fewest images accepted.

    Returns
    -------
    ndarray of shape (N, 32, 32, 3)
        The images, uint8: memory-mapped read-only for a `.npy` file, in memory for a folder.

    Raises
    ------
    WrongFileError
        When the file is not a `.npy` array (`describe_file` says what it is).
    UserInputError
        For a missing path, a path that is neither a regular file nor a folder, an unreadable
        `.npy` file or image, a folder without image files, or images of another shape or
        dtype, or fewer than `min_images` (`validate_images`).
    """
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file or folder")
    if path.is_dir():
        images = _load_folder(path)
    elif not path.is_file():
        raise UserInputError(f"{path}: not a regular file (a FIFO, device or socket); expected a .npy "
                             "file or a folder of images")
    else:
        images = _load_npy(path)
    return validate_images(images, str(path), min_images=min_images)


def _load_npy(path: Path) -> np.ndarray:
    found = describe_file(path)
    if found != "a .npy array":
        raise WrongFileError(f"{path}: found {found}, expected a .npy array of images (N, 32, 32, 3) "
                             "uint8 or a folder of images", found, "a .npy array")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserInputError(
            f"{path}: not a readable .npy array ({reason}); expected a uint8 array of shape "
            "(N, 32, 32, 3) saved with numpy.save"
        ) from None


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key that orders digit runs by value: 2.png before 10.png.

    Parameters
    ----------
    name : str
        A file name.

    Returns
    -------
    list of tuple
        One (0, int) per run of digits and one (1, lower-cased text) per run of other characters,
        in order.
    """
    return [(0, int(part)) if part.isdigit() else (1, part.lower())
            for part in re.split(r"(\d+)", name) if part]


def list_image_files(path: str | os.PathLike) -> tuple[list[Path], dict[str, int]]:
    """The image files of a folder in natural order (names differing only in case: by code point),
    and how many entries were skipped, by reason (hidden files among them).

    Parameters
    ----------
    path : str or os.PathLike
        The folder (not searched recursively).

    Returns
    -------
    files : list of Path
        The regular, non-hidden files whose suffix is .png, .jpg or .jpeg (in any case).
    skipped : dict of str to int
        How many other entries there were, by reason: hidden, another suffix, a subfolder, or
        not a regular file.
    """
    files, skipped = [], {}
    for entry in Path(path).iterdir():
        if entry.name.startswith("."):
            reason = "hidden (a name starting with '.', such as macOS's ._ files)"
        elif entry.suffix.lower() not in IMAGE_SUFFIXES:
            reason = "not .png/.jpg/.jpeg" if not entry.is_dir() else "a subfolder"
        elif not entry.is_file():
            reason = "not a regular file"
        else:
            files.append(entry)
            continue
        skipped[reason] = skipped.get(reason, 0) + 1
    files.sort(key=lambda file: (natural_key(file.name), file.name))
    return files, skipped


def _load_folder(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files, skipped = list_image_files(path)
    if skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
        logger.info("%s: skipped %d entries (%s)", path, sum(skipped.values()), reasons)
    if not files:
        raise UserInputError(f"{path}: folder holds no .png/.jpg/.jpeg files")
    images = np.empty((len(files),) + IMAGE_SHAPE, dtype=np.uint8)
    for index, file in enumerate(files):
        try:
            with Image.open(file) as image:
                images[index] = square_resize(eight_bit_rgb(image))
        except Image.DecompressionBombError as exc:
            raise UserInputError(f"{file}: image too large to decode safely ({exc})") from None
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise UserInputError(f"{file}: unreadable image ({exc})") from None
    return images


def eight_bit_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """`image` as 8-bit RGB; 16-bit greyscale (PNG's high bit depth, opened as mode I or I;16) is
    scaled down by its range rather than clipped at 255, which would turn it white.

    Parameters
    ----------
    image : PIL.Image.Image
        An opened image of any mode.

    Returns
    -------
    PIL.Image.Image
        The image in mode RGB. An integer-mode ("I...") image is scaled from 0..65535 when it
        is 16-bit, a PNG or holds values above 255 (else from 0..255) and made greyscale RGB.
    """
    from PIL import Image

    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64)
        full = 65535.0 if image.mode.startswith("I;16") or image.format == "PNG" or values.max() > 255 else 255.0
        return Image.fromarray(np.round(values.clip(0, full) * (255.0 / full)).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


def square_resize(image: PIL.Image.Image, size: int = IMAGE_SHAPE[0]) -> np.ndarray:
    """Center-crop to a square of the shorter side and resize to `size`x`size` (Lanczos).

    Parameters
    ----------
    image : PIL.Image.Image
        An RGB image (`eight_bit_rgb`).
    size : int, default=32
        The side of the output, in pixels.

    Returns
    -------
    ndarray of shape (size, size, 3)
        The image's pixels, uint8.
    """
    from PIL import Image

    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if image.size != (size, size):
        image = image.resize((size, size), Image.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def load_labels(path: str | os.PathLike, expected_length: int | None = None) -> np.ndarray:
    """Load a 1-D integer label array, optionally checking its length.

    The header is checked against the file's size before anything is read, so a file that
    declares more entries than it holds is refused without allocating them.

    Parameters
    ----------
    path : str or os.PathLike
        A `.npy` file of labels.
    expected_length : int, optional
        The number of labels required (one per image); None accepts any.

    Returns
    -------
    ndarray of shape (N,)
        The labels as int64 (`validate_labels`).

    Raises
    ------
    WrongFileError
        When the file is not a `.npy` array.
    UserInputError
        For a missing or unreadable file, or labels that `validate_labels` refuses.
    """
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file")
    found = describe_file(path)
    if found != "a .npy array":
        raise WrongFileError(f"{path}: found {found}, expected a .npy array of integer labels", found,
                             "a .npy array")
    try:
        labels = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "greater than file size" in reason:
            reason = "its header declares more entries than the file holds; truncated or corrupt"
        raise UserInputError(f"{path}: not a readable .npy array ({reason[:160]})") from None
    return validate_labels(labels, str(path), expected_length)


def images_digest(images: np.ndarray, samples: int = 256) -> str:
    """A short fingerprint of an image array: its count and the bytes of up to `samples` evenly
    spaced images (reads only those, so it is cheap for a memory-mapped file of any size).

    Parameters
    ----------
    images : ndarray of shape (N, 32, 32, 3)
        The images.
    samples : int, default=256
        How many evenly spaced images enter the digest, besides the array's shape.

    Returns
    -------
    str
        "N:" followed by the first 16 hex digits of the SHA-256 digest.
    """
    digest = hashlib.sha256(str(images.shape).encode())
    for index in np.unique(np.linspace(0, len(images) - 1, min(samples, len(images))).astype(np.int64)):
        digest.update(np.ascontiguousarray(images[index]).tobytes())
    return f"{len(images)}:{digest.hexdigest()[:16]}"


def iter_batches(images: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Yield consecutive uint8 batches (copies of a memory-mapped slice, never the whole array).

    For a memory-mapped file, the pages of each batch are handed back to the kernel once copied,
    so streaming over a file larger than memory does not grow the process's resident set.

    Parameters
    ----------
    images : ndarray of shape (N, ...)
        The images, in memory or memory-mapped.
    batch_size : int
        Images per batch; the last batch holds the rest.

    Yields
    ------
    ndarray of shape (batch_size, ...)
        A copy of the next `batch_size` images, in order.
    """
    for start in range(0, len(images), batch_size):
        batch = np.array(images[start : start + batch_size])
        _release_pages(images, start, len(batch))
        yield batch


def compute_in_batches(
    compute: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray, device: str | torch.device,
    batch_size: int = 512, progress: bool = False, desc: str = "encode", leave: bool = True,
) -> torch.Tensor:
    """`compute` of uint8 images, one [-1, 1] batch at a time on `device` without gradients,
    written into one output tensor: the one inference loop behind codes and latent maps.

    The output is allocated once the first batch shows its shape, and filled in place, so the
    results never exist twice (a list of parts plus their concatenation would double the peak).
    A bar that does not stay (`leave=False`, one nested under an outer bar) is drawn only when
    stderr is a terminal: in a log, its cursor movements would be left as `[A` escape codes.

    Parameters
    ----------
    compute : callable
        Maps a float32 (B, 3, 32, 32) batch in [-1, 1] on `device` to a tensor of shape (B, ...).
    images : ndarray of shape (N, 32, 32, 3)
        The images, uint8.
    device : str or torch.device
        Where each batch is computed.
    batch_size : int, default=512
        Images per batch.
    progress : bool, default=False
        Draw a progress bar.
    desc : str, default="encode"
        The progress bar's label.
    leave : bool, default=True
        Whether the bar stays once done.

    Returns
    -------
    torch.Tensor of shape (N, ...)
        The results in image order, of `compute`'s dtype, on the device `compute` returns them on
        (None when `images` is empty).
    """
    import torch
    from tqdm.auto import tqdm

    output = None
    drawn = progress and (leave or sys.stderr.isatty())
    with torch.inference_mode():
        for start, batch in zip(range(0, len(images), batch_size),
                                tqdm(iter_batches(images, batch_size), total=-(-len(images) // batch_size),
                                     disable=not drawn, desc=desc, unit="batch", leave=leave), strict=True):
            result = compute(to_tensor(batch).to(device))
            if output is None:
                output = torch.empty((len(images), *result.shape[1:]), dtype=result.dtype, device=result.device)
            output[start : start + len(batch)] = result
    return output


def _release_pages(images: np.ndarray, start: int, count: int) -> None:
    """madvise(DONTNEED) the whole pages under images[start:start+count] of a read-only file
    mapping (a copy-on-write mapping would lose its edits, so only mode "r" is released)."""
    if getattr(images, "mode", None) != "r" or not isinstance(images.base, mmap.mmap):
        return
    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    mapping = images._mmap
    row = images.strides[0]
    first = images.offset % mmap.ALLOCATIONGRANULARITY + start * row
    low = -(-first // mmap.PAGESIZE) * mmap.PAGESIZE
    high = (first + count * row) // mmap.PAGESIZE * mmap.PAGESIZE
    if high > low:
        mapping.madvise(mmap.MADV_DONTNEED, low, high - low)


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """uint8 NHWC array -> float32 NCHW tensor scaled to [-1, 1] (`scale_pixels`).

    Parameters
    ----------
    batch : ndarray of shape (B, H, W, 3)
        uint8 images; a read-only array (a memory-mapped slice) is copied first.

    Returns
    -------
    torch.Tensor of shape (B, 3, H, W)
        The images, float32 in [-1, 1], on the CPU.
    """
    import torch

    return scale_pixels(torch.from_numpy(np.array(batch, copy=not batch.flags.writeable)))


def scale_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC tensor -> float32 NCHW tensor scaled to [-1, 1] (the Tanh decoder's range): the
    one preprocessing of every model input, in Python and in the ONNX export.

    Parameters
    ----------
    images : torch.Tensor of shape (B, H, W, 3)
        uint8 images.

    Returns
    -------
    torch.Tensor of shape (B, 3, H, W)
        The images, float32: pixel / 127.5 - 1.
    """
    import torch

    return images.permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1.0

