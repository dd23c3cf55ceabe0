"""Sphinx configuration of simspec's documentation site.

Build it from the repository root (no make needed)::

    python -m sphinx -W --keep-going -n -c docs . docs/_build/html

``-c docs`` reads this file; ``.`` makes the checkout the source, so that the derivations in
``theory/`` and the experiments' write-ups are pages of the site next to ``docs/``, and every
relative link in the Markdown works on the site as it does on GitHub.  ``-W --keep-going -n`` is the
strict mode that ``tests/test_docs_site.py`` runs: a broken link, reference or docstring fails it.
Open ``docs/_build/html/index.html``.

Nothing here keeps a second list of pages or names:

* the site's table of contents is the table under "The documentation" in ``docs/index.md``
  (its first column is the section: Tutorial, How-to guides, Reference, Background), and
  ``theory/README.md``'s links are the derivations under it;
* ``docs/api.md`` is filled at build time from ``simspec.API_SECTIONS`` and the docstrings.

The notebooks in ``docs/notebooks/`` run while the site is built (their figures are shown;
``SIMSPEC_DOCS_EXECUTE=off`` renders them without outputs); an error in one fails the build.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import re
import sys
from pathlib import Path

from sphinx import addnodes
from sphinx.errors import ConfigError

import simspec

ROOT = Path(__file__).resolve().parents[1]

project = "simspec"
author = "the simspec authors"
copyright = "the simspec authors"
release = version = simspec.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc"]

# The source is the whole checkout; only these files are pages.
root_doc = "docs/index"
include_patterns = ["docs/**", "theory/*.md", "experiments/*/README.md"]
exclude_patterns = [".*", "_build", "build", "dist", "out", "simspec", "simspec.egg-info", "tests", "benchmarks",
                    "examples", "docs/_build", "docs/examples", "experiments/*/out", "**/__pycache__",
                    "**/.ipynb_checkpoints", "**/jupyter_execute"]

# Markdown (MyST): GitHub-style anchors, so that `page.md#a-heading` links resolve on the site too.
myst_heading_anchors = 6

# Notebooks (myst-nb): executed at build time, cached between local builds.
nb_execution_mode = os.environ.get("SIMSPEC_DOCS_EXECUTE", "cache")
nb_execution_timeout = 120
nb_execution_raise_on_error = True
nb_execution_show_tb = True

# API reference (autodoc): members in source order; the signature shows the annotations as written.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"simspec {release}"
html_static_path: list[str] = []


# -- the table of contents, from docs/index.md's table and theory/README.md's links -----------------

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s#]+)(?:#[^)\s]*)?\)")
_SECTIONS = ("Tutorial", "How-to guides", "Reference", "Background")


def _index_toctrees(text: str) -> str:
    """Hidden toctrees, one per section of the table under "The documentation" in docs/index.md."""
    section, pages = None, {name: [] for name in _SECTIONS}
    table = text.split("## The documentation", 1)[1].split("\n## ", 1)[0]
    for line in table.splitlines():
        if not line.startswith("|"):
            continue
        first, page = (cell.strip() for cell in line.split("|")[1:3])
        if first == "section" or first and set(first) <= set("-:"):  # the header and the rule below it
            continue
        if first:
            if first not in _SECTIONS:
                raise ValueError(f"docs/index.md: unknown section {first!r}; use one of {_SECTIONS}")
            section = first
        for target in _LINK.findall(page):
            if section is None:
                raise ValueError(f"docs/index.md: {target} before any section")
            pages[section].append(re.sub(r"\.(md|ipynb)$", "", target))
    if not all(pages.values()):
        raise ValueError(f"docs/index.md: the documentation table must list pages in every section {_SECTIONS}")
    return "".join(_toctree(entries, caption=name) for name, entries in pages.items())


def _toctree(entries: list[str], caption: str | None = None) -> str:
    options = ":hidden:\n" + (f":caption: {caption}\n" if caption else "")
    return "\n\n```{toctree}\n" + options + "\n" + "\n".join(dict.fromkeys(entries)) + "\n```\n"


def _linked_pages(text: str, folder: Path) -> list[str]:
    """The pages in ``folder`` that a hub page links to, in order of first mention."""
    found = []
    for target in _LINK.findall(text):
        if "/" not in target and target.endswith(".md") and (folder / target).exists():
            found.append(target[:-3])
    return found


# -- the API page, from simspec.API_SECTIONS and the docstrings -------------------------------------


def _data_doc(name: str) -> list[str]:
    """The ``#:`` comment documenting the module-level constant ``simspec.<name>`` where it is defined."""
    from sphinx.pycode import ModuleAnalyzer

    obj = getattr(simspec, name)
    for modname in sorted(m for m in list(sys.modules) if m.startswith("simspec.")):
        module = sys.modules[modname]
        if getattr(module, name, None) is obj:
            doc = ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", name))
            if doc:
                return [line for line in doc if line.strip()]
    raise ValueError(f"simspec.{name}: no '#:' comment documents it where it is defined")


def _api_entry(name: str) -> str:
    obj = getattr(simspec, name)
    if inspect.ismodule(obj):
        return f".. automodule:: {obj.__name__}\n"
    if inspect.isclass(obj):
        kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        return f".. {kind}:: simspec.{name}\n"
    if inspect.isfunction(obj):
        return f".. autofunction:: simspec.{name}\n"
    doc = _data_doc(name)
    value = repr(obj)
    lines = [f".. py:data:: {name}"]  # in the current module, simspec
    if len(value) <= 60:
        lines.append(f"   :value: {value}")
    return "\n".join(lines) + "\n\n" + "".join(f"   {line}\n" for line in doc)


def _api_sections() -> str:
    out = []
    for section, names in simspec.API_SECTIONS.items():
        body = "\n".join(_api_entry(name) for name in names)
        out.append(f"\n\n## {section}\n\n```{{eval-rst}}\n.. currentmodule:: simspec\n\n{body}```\n")
    return "".join(out)


# -- hooks ---------------------------------------------------------------------------------------------


def _source_read(app, docname: str, source: list[str]) -> None:
    if docname == "docs/index":
        source[0] += _index_toctrees(source[0])
    elif docname == "theory/README":
        source[0] += _toctree(_linked_pages(source[0], ROOT / "theory"))
    elif docname == "docs/api":
        source[0] += _api_sections()


def _lookup(path: str):
    """The object at a dotted path (``pkg.module.Class.attr``), or ``None``."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:  # simspec's OptionalDependencyError included
            continue
        except Exception:
            return None
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except Exception:
            return None
        return obj
    return None


def _resolve(app, env, node, contnode):
    """Resolve what the site does not document under the name a docstring uses; fail on what does not exist.

    * ``simspec.module.Name`` is documented as ``simspec.Name`` when that is the same public object
      (docstrings name classes where they are defined, the site where users import them from): linked.
    * Anything else that exists (a private base class, a helper of a module, a numpy or standard-library
      type in an annotation) is shown as code, unlinked: the site documents the public API only.
    * A name that exists nowhere (a typo, something renamed or removed) stays a broken reference,
      which fails the strict build.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    parts = target.split(".")
    if len(parts) >= 3 and parts[0] == "simspec":
        for public_at in (len(parts) - 1, len(parts) - 2):
            public = parts[public_at]
            if public in simspec.__all__ and _lookup(".".join(parts[:public_at + 1])) is getattr(simspec, public):
                new_target = ".".join(["simspec", *parts[public_at:]])
                found = env.domains["py"].resolve_xref(env, node["refdoc"], app.builder, node["reftype"], new_target,
                                                       node, contnode)
                if found is not None:
                    return found
    # where the reference was written: the module of each documented object around it, and the object
    context = ["simspec"]
    parent = node.parent
    while parent is not None:
        if isinstance(parent, addnodes.desc):
            for sig in parent.findall(addnodes.desc_signature):
                owner = _lookup(".".join(filter(None, [sig.get("module"), sig.get("fullname")])))
                module = inspect.getmodule(owner)
                if module is not None:
                    context.append(module.__name__)
                    if inspect.isclass(owner):
                        context.append(f"{module.__name__}.{owner.__qualname__}")
                break
        parent = parent.parent
    for prefix in ["", *context]:
        if _lookup(f"{prefix}.{target}" if prefix else target) is not None:
            return contnode
    return None


def _factory_defaults(app, what, name, obj, options, signature, return_annotation):
    """A dataclass field's ``default_factory`` shows as ``Overheads()``, not ``<factory>`` (which no parser reads)."""
    if not signature or "<factory>" not in signature or not dataclasses.is_dataclass(obj):
        return None
    factories = [f.default_factory for f in dataclasses.fields(obj)
                 if f.init and f.default_factory is not dataclasses.MISSING]
    for factory in factories:
        name_ = getattr(factory, "__name__", "")
        signature = signature.replace("<factory>", f"{name_}()" if name_.isidentifier() else "...", 1)
    return signature, return_annotation


def _drop_object_base(app, name, obj, options, bases) -> None:
    """"Bases: object" says nothing: show the bases of classes that have some."""
    if bases == [object]:
        bases.clear()


def _redirect_root(app, exception) -> None:
    """The site's own index.html: the home page is docs/index.html."""
    if exception is None and app.builder.format == "html":
        Path(app.outdir, "index.html").write_text(
            '<!DOCTYPE html>\n<meta charset="utf-8">\n<meta http-equiv="refresh" content="0; url=docs/index.html">\n'
            '<link rel="canonical" href="docs/index.html">\n<a href="docs/index.html">simspec documentation</a>\n',
            encoding="utf-8")


def setup(app):
    if Path(app.srcdir).resolve() != ROOT:
        raise ConfigError("build the site from the repository root: python -m sphinx -W --keep-going -n -c docs . "
                          "docs/_build/html")
    app.connect("source-read", _source_read)
    app.connect("missing-reference", _resolve)
    app.connect("autodoc-process-signature", _factory_defaults)
    app.connect("autodoc-process-bases", _drop_object_base)
    app.connect("build-finished", _redirect_root)
    return {"parallel_read_safe": True}
