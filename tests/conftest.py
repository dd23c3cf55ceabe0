import os

import matplotlib

matplotlib.use("Agg")

from hypothesis import settings

# Hypothesis: deterministic in CI (derandomize), fewer examples on 2 cores.
settings.register_profile("ci", max_examples=40, derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``real_models`` load the real pair (minutes, ~330 MB): run only with SIMSPEC_REAL_MODELS=1."""
    if os.environ.get("SIMSPEC_REAL_MODELS") == "1":
        return
    import pytest

    skip = pytest.mark.skip(reason="loads real models: set SIMSPEC_REAL_MODELS=1 to run it")
    for item in items:
        if "real_models" in item.keywords:
            item.add_marker(skip)
