"""Sphinx configuration: the Markdown pages through MyST, the API reference from the
docstrings (autodoc + napoleon), the furo theme.

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from solo_plugins._version import __version__  # noqa: E402

project = "solo-plugins"
author = "the solo-plugins developers"
copyright = "2026, the solo-plugins developers"
version = release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "requirements.txt"]
html_theme = "furo"
html_title = f"solo-plugins {version}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# solo-learn and the GPU libraries are not needed to document the torch-only layers.
autodoc_mock_imports = ["solo", "nvidia"]
