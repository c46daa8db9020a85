"""Sphinx configuration: the Markdown guides (MyST) and the API reference (autodoc + numpydoc).

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors, as in the tests).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the package next to these docs, not another installed copy
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

from spikeinterface_sero import __version__  # noqa: E402

project = "spikeinterface-sero"
author = "spikeinterface-sero developers"
copyright = "spikeinterface-sero developers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# --- autodoc / autosummary: the public names (``__all__``) of each documented module -----------------
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource"}
autodoc_typehints = "signature"  # the types are written out in the numpydoc "Parameters" sections
autodoc_preserve_defaults = True  # defaults as written in the code (no memory addresses)
autodoc_class_signature = "mixed"
autodoc_mock_imports = []  # everything imports: the package imports no TensorFlow at import time
autosummary_generate = False  # the summary tables link into api.rst; nothing is written into docs/

# --- numpydoc -----------------------------------------------------------------------------------------
numpydoc_show_class_members = False  # autodoc's :members: documents the members; no second table
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False  # no intersphinx (no network in CI): type names stay plain text
# the format rules the build enforces (warnings are errors): known sections (GL06) in the standard order (GL07);
# every public object has a docstring (GL08) with a summary (SS01); every documented parameter exists (PR02),
# has a type (PR04: ``name : type, default: value``) and a space before the colon (PR10)
numpydoc_validation_checks = {"GL06", "GL07", "GL08", "SS01", "PR02", "PR04", "PR10"}
# a SpikeInterface extension documents the parameters of ``analyzer.compute(name, **params)``, not of its
# constructor (``ComputeSerotonergic`` and ``compute_serotonergic``, which shares its docstring)
numpydoc_validation_overrides = {"PR02": [r"are those of ``analyzer\.compute\("]}

# --- MyST: the existing Markdown pages ----------------------------------------------------------------
myst_heading_anchors = 3  # the guides link to sections as page.md#section-title

# --- no network: no intersphinx, no remote images ------------------------------------------------------
intersphinx_mapping: dict = {}

html_theme = "alabaster"
html_title = f"{project} {release}"
html_static_path: list[str] = []


# --- constants re-exported by a package (``spikeinterface_sero.model.TIME_COLUMN``) ------------------------
def _constant_docstring(app, what, name, obj, options, lines):
    """A constant's docstring is its ``#:`` comment where it is defined, never the docstring of its type.

    autodoc looks for the comment in the module the name is documented under, so for a constant a package
    re-exports (listed with ``autodata`` in api.rst) it finds nothing and falls back on ``type(obj).__doc__``
    (``int``'s or ``numpy.ndarray``'s); this takes the comment from the package's module that defines it.
    """
    if what != "data" or callable(obj):
        return
    from sphinx.errors import PycodeError
    from sphinx.pycode import ModuleAnalyzer

    module_name, short = name.rsplit(".", 1)
    try:
        if ("", short) in ModuleAnalyzer.for_module(module_name).find_attr_docs():
            return  # commented where it is documented: autodoc found the comment
    except PycodeError:
        pass
    lines.clear()
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("spikeinterface_sero") or getattr(module, short, None) is not obj:
            continue
        try:
            comment = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", short))
        except PycodeError:
            continue
        if comment:
            lines.extend(comment)
            return


def setup(app):
    app.connect("autodoc-process-docstring", _constant_docstring, priority=100)  # before numpydoc (500)
