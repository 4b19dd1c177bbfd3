"""The package version: the one place it is written.

``pyproject.toml`` reads it at build time (``[tool.setuptools.dynamic]``), so the installed
metadata, ``infomorphic.__version__`` and ``infomorphic --version`` all show this string.
"""

__version__ = "0.1.0"
