"""Packaging for aecluster. Install torch==2.13.0 first (CPU wheel) so pip does not fetch CUDA builds."""

import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"', Path("aecluster/version.py").read_text()).group(1)

setup(
    name="aecluster",
    version=VERSION,
    description="Unsupervised image clustering with a convolutional autoencoder",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["aecluster", "aecluster.*"]),
    package_data={"aecluster": ["py.typed", "configs/*.yaml"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1,<3",
        "numpy>=1.24",
        # sklearn.utils.validation.validate_data (the clustering estimators and ReducerChain) is new in 1.6.
        "scikit-learn>=1.6",
        "scipy>=1.10",
        "umap-learn>=0.5.4",
        "openTSNE>=1.0",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "Pillow>=9.0",
        "PyYAML>=6.0",
    ],
    extras_require={
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16", "onnxscript>=0.1"],
        "dev": ["pytest>=7", "hypothesis>=6", "ruff>=0.4", "onnx>=1.14", "onnxruntime>=1.16",
                "onnxscript>=0.1"],
    },
    entry_points={"console_scripts": ["aecluster=aecluster.cli:main"]},
)
