"""aecluster/errors.py: the errors for a user's mistake."""

import pytest

from aecluster.errors import UserInputError, WrongFileError


def test_a_users_mistake_is_a_value_error():
    with pytest.raises(ValueError, match="^x.npy: no such file$"):
        raise UserInputError("x.npy: no such file")


def test_a_wrong_file_says_what_it_looks_like_and_what_was_expected():
    error = WrongFileError("m.pth: found a .npy array, expected a checkpoint", "a .npy array", "a torch checkpoint")
    assert isinstance(error, UserInputError) and str(error) == "m.pth: found a .npy array, expected a checkpoint"
    assert (error.found, error.expected) == ("a .npy array", "a torch checkpoint")
