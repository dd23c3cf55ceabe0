"""The documentation site (docs/conf.py) builds in strict mode: a broken link, anchor, cross-reference or
docstring, a page left out of the table of contents, or a notebook that fails fails the build.

Without sphinx (an install without the ``docs`` extra) the build is skipped, except in CI, where the
README's test command installs it and a skip would hide a broken site.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import simspec

ROOT = Path(__file__).resolve().parents[1]
#: the strict build, as docs/conf.py and the README give it (the output folder is added)
COMMAND = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-c", "docs", "."]
PAGES = sorted({*ROOT.glob("docs/**/*.md"), *ROOT.glob("docs/notebooks/*.ipynb"), *ROOT.glob("theory/*.md"),
                *ROOT.glob("experiments/*/README.md")} - set(ROOT.glob("docs/_build/**/*")))


def _require_sphinx():
    missing = [name for name in ("sphinx", "myst_nb", "furo") if importlib.util.find_spec(name) is None]
    if missing:
        message = f"{', '.join(missing)} not installed: pip install -e \".[test]\" (or \".[docs]\")"
        if os.environ.get("CI"):
            pytest.fail(f"CI builds the documentation site, but {message}")
        pytest.skip(message)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once in strict mode (the notebooks are executed: about a minute on 2 cores)."""
    _require_sphinx()
    out = tmp_path_factory.mktemp("site") / "html"
    env = {**os.environ, "MPLBACKEND": "Agg", "SIMSPEC_DOCS_EXECUTE": "force"}
    result = subprocess.run([*COMMAND, str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    output = result.stdout + result.stderr
    warnings = [line for line in output.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)
                and "[IPKernelApp]" not in line]  # a kernel's own log lines are not the build's
    hint = ("\n(a new page goes in the table under 'The documentation' in docs/index.md; a new derivation is "
            "linked from theory/README.md)" if "isn't included in any toctree" in output else "")
    assert result.returncode == 0, "the strict docs build failed:\n" + "\n".join(warnings or [output[-6000:]]) + hint
    return out


@pytest.mark.timeout(600)
def test_site_builds_in_strict_mode_with_every_page(site):
    built = {p.relative_to(site).with_suffix("").as_posix() for p in site.rglob("*.html")}
    expected = {p.relative_to(ROOT).with_suffix("").as_posix() for p in PAGES}
    assert expected <= built, f"pages missing from the site: {sorted(expected - built)}"
    assert (site / "index.html").exists(), "the site's root redirects to docs/index.html"


@pytest.mark.timeout(600)
def test_api_page_documents_every_public_name(site):
    page = (site / "docs" / "api.html").read_text(encoding="utf-8")
    missing = [name for name in simspec.__all__
               if f'id="simspec.{name}"' not in page and f'id="module-simspec.{name}"' not in page]
    assert not missing, f"not on the API page: {missing}"
    for section in simspec.API_SECTIONS:
        assert f">{section}<" in page.replace("&amp;", "&"), section


@pytest.mark.timeout(600)
def test_notebooks_are_shown_with_their_figures(site):
    for path in sorted(ROOT.glob("docs/notebooks/*.ipynb")):
        page = (site / "docs" / "notebooks" / path.with_suffix(".html").name).read_text(encoding="utf-8")
        assert "<img" in page, f"{path.name}: no figure on the site (was it executed?)"


def test_every_python_example_is_a_doctest():
    """Python examples live in docs/ (doctested by pytest: --doctest-glob=*.md) and are written as doctests.

    A block that cannot run in the tests (it needs a package simspec does not install) says why on the
    line above its fence: ``<!-- not doctested: REASON -->``.
    """
    offenders = []
    for path in PAGES:
        if path.suffix != ".md":
            continue
        text = path.read_text(encoding="utf-8")
        in_docs = path.is_relative_to(ROOT / "docs")
        for m in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.S | re.M):
            lang, body = m.groups()
            before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            excused = re.fullmatch(r"<!--\s*not doctested:\s*\S.*-->\s*", before) is not None
            if (lang in ("python", "py", "pycon") and ">>>" not in body and not excused) or (
                    ">>>" in body and not in_docs):
                line = text[:m.start()].count("\n") + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert not offenders, (f"Python examples that pytest does not doctest: {offenders} (write them as doctests "
                           "in docs/, or put '<!-- not doctested: REASON -->' on the line above the fence)")
