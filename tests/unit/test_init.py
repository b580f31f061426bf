"""aecluster/__init__.py: the package's version and its estimator, imported on first use."""

import pytest

import aecluster
from aecluster import version


def test_the_package_gives_its_version_and_its_estimator():
    from aecluster.api import AEClusterer

    assert aecluster.__version__ == version.__version__ and aecluster.__all__ == ["AEClusterer", "__version__"]
    assert aecluster.AEClusterer is AEClusterer


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'aecluster' has no attribute 'Clusterer'"):
        aecluster.Clusterer  # noqa: B018
