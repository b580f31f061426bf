"""Unit tests of the batch view augmentations (none, flip-crop, simclr) in aecluster.augment."""

import pytest
import torch

from aecluster.augment import AUGMENTATIONS, augment


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def column_ramp(count: int, pixels: int = 32) -> torch.Tensor:
    """A batch whose every pixel holds its column index / 32 (so a step of one column is 1/32),
    the same in all channels and rows."""
    ramp = torch.arange(pixels, dtype=torch.float32) / 32
    return ramp.expand(count, 3, pixels, pixels).clone()


def median_step(views: torch.Tensor, dim: int) -> torch.Tensor:
    """Per view, the median absolute difference between neighbouring pixels of channel 0 along
    `dim` (-1: from column to column, -2: from row to row)."""
    return views[:, 0].diff(dim=dim).abs().flatten(1).median(dim=1).values


def test_modes_are_the_registered_ones():
    assert AUGMENTATIONS == ("none", "flip-crop", "simclr")


def test_unknown_mode_names_it_and_the_choices():
    with pytest.raises(ValueError) as error:
        augment(torch.zeros(1, 3, 32, 32), "rotate", seeded())
    assert str(error.value) == "unknown augmentation 'rotate'; choose one of none, flip-crop, simclr"


def test_none_returns_the_input_itself():
    batch = torch.rand(2, 3, 32, 32) * 2 - 1
    assert augment(batch, "none", seeded()) is batch


def test_none_downsamples_a_ramp_to_pixel_pair_centres():
    # Antialiased bilinear halving averages a linear ramp symmetrically around each pair of
    # columns (2i, 2i+1): away from the border the result is the ramp at 2i + 0.5.
    view = augment(column_ramp(1), "none", seeded(), size=16)
    assert view.shape == (1, 3, 16, 16)
    expected = (torch.arange(16, dtype=torch.float32) * 2 + 0.5) / 32
    assert torch.allclose(view[0, :, :, 1:15], expected[1:15].expand(3, 16, 14), atol=1e-5)


def test_none_does_not_draw_from_the_generator():
    generator = seeded(3)
    augment(torch.zeros(2, 3, 32, 32), "none", generator, size=16)
    assert torch.equal(torch.rand(4, generator=generator), torch.rand(4, generator=seeded(3)))


@pytest.mark.parametrize("mode", AUGMENTATIONS)
@pytest.mark.parametrize("size", [8, 16, 32])
def test_views_have_the_requested_size(mode, size):
    views = augment(torch.rand(3, 3, 32, 32) * 2 - 1, mode, seeded(), size=size)
    assert views.shape == (3, 3, size, size) and views.dtype == torch.float32


@pytest.mark.parametrize("mode", ["flip-crop", "simclr"])
def test_same_seed_same_views_other_seed_other_views(mode):
    batch = torch.rand(4, 3, 32, 32) * 2 - 1
    first = augment(batch, mode, seeded(5))
    assert torch.equal(first, augment(batch, mode, seeded(5)))
    assert not torch.equal(first, augment(batch, mode, seeded(6)))


@pytest.mark.parametrize("mode", ["flip-crop", "simclr"])
def test_global_seed_plays_no_part(mode):
    batch = torch.rand(4, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    first = augment(batch, mode, seeded(5))
    torch.manual_seed(12345)
    torch.rand(100)
    assert torch.equal(first, augment(batch, mode, seeded(5)))


@pytest.mark.parametrize("mode", ["flip-crop", "simclr"])
def test_generator_advances_between_calls(mode):
    batch = torch.rand(4, 3, 32, 32) * 2 - 1
    generator = seeded(5)
    assert not torch.equal(augment(batch, mode, generator), augment(batch, mode, generator))


@pytest.mark.parametrize("mode", ["flip-crop", "simclr"])
def test_a_view_does_not_depend_on_the_other_images(mode):
    first, second = torch.rand(2, 3, 3, 32, 32) * 2 - 1
    first[0] = second[0]
    assert torch.equal(augment(first, mode, seeded(2))[0], augment(second, mode, seeded(2))[0])


@pytest.mark.parametrize("mode", ["flip-crop", "simclr"])
def test_identical_images_get_different_views(mode):
    batch = (torch.rand(1, 3, 32, 32) * 2 - 1).expand(4, 3, 32, 32).contiguous()
    views = augment(batch, mode, seeded(0))
    assert all(not torch.equal(views[0], views[i]) for i in range(1, 4))


@pytest.mark.parametrize("mode", ["flip-crop", "simclr"])
def test_views_stay_in_minus_one_to_one(mode):
    batch = torch.randint(0, 2, (16, 3, 32, 32)).float() * 2 - 1  # only the extremes
    views = augment(batch, mode, seeded(1))
    assert views.min() >= -1 and views.max() <= 1


def test_flip_crop_stays_within_the_input_values():
    batch = torch.rand(16, 3, 32, 32) * 0.5 - 0.2  # values in [-0.2, 0.3]
    views = augment(batch, "flip-crop", seeded(1))
    assert views.min() >= -0.2 - 1e-6 and views.max() <= 0.3 + 1e-6


def test_flip_crop_keeps_a_flat_image_flat():
    batch = torch.tensor([0.25, -0.5, 0.75]).view(1, 3, 1, 1).expand(8, 3, 32, 32)
    views = augment(batch, "flip-crop", seeded(0))
    assert torch.allclose(views, batch, atol=1e-6)


def test_flip_crop_keeps_columns_as_columns():
    # An image that changes only from column to column has identical rows; so has every view
    # (crop, shift and flip act on the columns and the rows separately).
    views = augment(column_ramp(8), "flip-crop", seeded(0))
    assert torch.allclose(views, views[:, :, :1].expand_as(views), atol=1e-6)
    rows = column_ramp(8).transpose(2, 3)
    views = augment(rows, "flip-crop", seeded(0))
    assert torch.allclose(views, views[:, :, :, :1].expand_as(views), atol=1e-6)


def test_flip_crop_flips_about_half_the_views():
    views = augment(column_ramp(200), "flip-crop", seeded(0))
    steps = views[:, 0, 0].diff()
    flipped = (steps < 0).sum(dim=1) > steps.shape[1] // 2
    assert 60 <= int(flipped.sum()) <= 140
    # A flipped view runs right to left: its left half is brighter than its right half.
    left, right = views[:, 0, 0, :16].mean(dim=1), views[:, 0, 0, 16:].mean(dim=1)
    assert torch.equal(flipped, left > right)


def test_flip_crop_scales_one_side_fully_and_the_other_by_at_least_sqrt_three_quarters():
    # Area scale 1 and an aspect ratio in [3/4, 4/3]: one side of the crop spans the whole image
    # (one column per output pixel on a column ramp) and the other at least sqrt(3/4) of it.
    across = median_step(augment(column_ramp(64), "flip-crop", seeded(4)), dim=-1) * 32
    down = median_step(augment(column_ramp(64).transpose(2, 3), "flip-crop", seeded(4)), dim=-2) * 32
    assert torch.all(across >= 0.866 - 1e-3) and torch.all(across <= 1 + 1e-4)
    assert torch.all(down >= 0.866 - 1e-3) and torch.all(down <= 1 + 1e-4)
    assert torch.allclose(torch.maximum(across, down), torch.ones(64), atol=1e-4)
    assert (across < 0.99).any() and (down < 0.99).any()


def test_flip_crop_to_half_size_takes_every_other_column():
    steps = median_step(augment(column_ramp(32), "flip-crop", seeded(4), size=16), dim=-1) * 32
    assert torch.all(steps >= 2 * 0.866 - 1e-3) and torch.all(steps <= 2 + 1e-4)


def test_simclr_keeps_gray_images_gray():
    level = torch.rand(16, 1, 32, 32) * 2 - 1
    views = augment(level.expand(16, 3, 32, 32), "simclr", seeded(0))
    assert torch.allclose(views[:, 0], views[:, 1], atol=1e-5) and torch.allclose(views[:, 1], views[:, 2], atol=1e-5)


def test_simclr_turns_about_a_fifth_of_colour_images_gray():
    red = torch.tensor([0.8, -0.6, -0.4]).view(1, 3, 1, 1).expand(400, 3, 32, 32)
    views = augment(red, "simclr", seeded(0), size=8)
    gray = (views[:, 0] == views[:, 1]).all(dim=(1, 2)) & (views[:, 1] == views[:, 2]).all(dim=(1, 2))
    assert 50 <= int(gray.sum()) <= 110
    # The others stay clearly coloured, red their strongest channel (saturation is never driven to zero).
    coloured = views[~gray]
    assert torch.all(coloured.amax(dim=1) - coloured.amin(dim=1) > 0.3)
    assert torch.equal(coloured[:, 0], coloured.amax(dim=1))


def test_simclr_changes_the_colours_of_most_views():
    flat = torch.tensor([0.2, -0.1, 0.4]).view(1, 3, 1, 1).expand(100, 3, 32, 32)
    views = augment(flat, "simclr", seeded(0), size=8)
    unchanged = (views - flat[:, :, :8, :8]).abs().amax(dim=(1, 2, 3)) < 1e-4
    # Jitter is skipped for 1 in 5 and grayscale then applied to 1 in 5 of those: about 16 left alone.
    assert 4 <= int(unchanged.sum()) <= 32


@pytest.mark.xfail(strict=True, reason="contrast pivots on the luma mean of the image before the brightness "
                   "jitter, not of the image it adjusts, so it shifts a flat image's level beyond the brightness range")
def test_simclr_contrast_leaves_a_flat_image_level_alone():
    # On a flat mid-gray image only brightness (factor 0.6..1.4) can move the level, from 0.5 to
    # 0.3..0.7: contrast, saturation and hue leave a flat gray image as it is.
    views = augment(torch.zeros(500, 3, 32, 32), "simclr", seeded(0), size=4)
    level = (views + 1) / 2
    assert level.min() >= 0.3 - 1e-5 and level.max() <= 0.7 + 1e-5


@pytest.mark.parametrize("mode", AUGMENTATIONS)
def test_augment_is_seeded_and_in_range(mode):
    batch = torch.rand(8, 3, 32, 32) * 2 - 1
    first = augment(batch, mode, torch.Generator().manual_seed(1))
    second = augment(batch, mode, torch.Generator().manual_seed(1))
    assert torch.equal(first, second) and first.shape == batch.shape
    assert first.min() >= -1.0001 and first.max() <= 1.0001
    if mode != "none":
        assert not torch.equal(first, batch)


@pytest.mark.parametrize("mode", AUGMENTATIONS)
def test_augment_renders_requested_size(mode):
    batch = torch.rand(4, 3, 32, 32) * 2 - 1
    assert augment(batch, mode, torch.Generator().manual_seed(0), 16).shape == (4, 3, 16, 16)

