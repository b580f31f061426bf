"""aecluster/encoder.py: `ImageEncoder`, the transformer of uint8 images into a model's codes, and
scikit-learn's own estimator checks of it (those that cannot take images are AEClusterer's, in
test_api.py)."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

from aecluster.checkpoint import read_checkpoint
from aecluster.encoder import N_FEATURES, ImageEncoder
from aecluster.errors import UserInputError
from tests.unit.test_api import NOT_APPLICABLE, TABULAR, WITHOUT_DATA

IMAGES = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


def hand_codes(model, images):
    """The model's codes of `images`, pixels scaled to [-1, 1] here."""
    with torch.no_grad():
        return model.eval().encode(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1).numpy()


def test_a_checkpoints_encoder_gives_the_models_codes(trained_checkpoint):
    encoder = ImageEncoder.from_payload(read_checkpoint(trained_checkpoint), trained_checkpoint)
    codes = encoder.transform(IMAGES)
    assert codes.dtype == np.float32 and codes.shape == (6, encoder.model_.code_dim)
    np.testing.assert_allclose(codes, hand_codes(encoder.model_, IMAGES), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(encoder.transform(IMAGES.reshape(6, N_FEATURES)), codes)
    assert N_FEATURES == 3072 and encoder.n_features_in_ == 3072
    assert encoder.checkpoint_info_["model"] == "improved" == encoder.encoder_config_["model"]
    assert encoder.encoder_config_["weight_format"] == "float32"


def test_fit_with_a_checkpoint_loads_it_and_trains_nothing(trained_checkpoint):
    encoder = ImageEncoder(checkpoint=trained_checkpoint)
    with pytest.raises(NotFittedError):
        encoder.transform(IMAGES)
    assert encoder.fit(IMAGES) is encoder
    np.testing.assert_allclose(encoder.transform(IMAGES[:2]), hand_codes(encoder.model_, IMAGES[:2]),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("images, message", [
    (IMAGES[:1], "X: found 1 images, expected at least 2"),
    (IMAGES.astype(np.float32), "X: found"),
    (IMAGES[:, :16], "expected shape (N, 32, 32, 3) dtype uint8"),
])
def test_fit_refuses_images_it_cannot_use(trained_checkpoint, images, message):
    with pytest.raises(UserInputError) as raised:
        ImageEncoder(checkpoint=trained_checkpoint).fit(images)
    assert message in str(raised.value)


def test_codes_that_are_not_finite_are_refused_in_one_line(trained_checkpoint):
    encoder = ImageEncoder(checkpoint=trained_checkpoint).fit(IMAGES)
    with torch.no_grad():
        next(encoder.model_.encoder.parameters()).fill_(float("inf"))
    with pytest.raises(UserInputError) as raised:
        encoder.transform(IMAGES[:4])
    message = str(raised.value)
    assert message.startswith(str(trained_checkpoint)) and "NaN or infinite codes for 4 of 4 images" in message


def test_bad_parameters_are_refused_before_any_work():
    with pytest.raises(ValueError, match="'epochs' parameter"):
        ImageEncoder(epochs=0).fit(IMAGES)
    with pytest.raises(UserInputError, match="unknown device"):
        ImageEncoder(device="gpu").fit(IMAGES)


def test_image_encoder_estimator_checks(trained_checkpoint):
    results = check_estimator(ImageEncoder(checkpoint=str(trained_checkpoint)),
                              expected_failed_checks={**NOT_APPLICABLE, "check_transformer_preserve_dtypes": TABULAR},
                              on_fail=None)
    assert [r["check_name"] for r in results if r["status"] == "failed"] == []
    assert WITHOUT_DATA <= {r["check_name"] for r in results if r["status"] == "passed"}
