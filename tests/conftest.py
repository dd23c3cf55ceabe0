import os

import matplotlib

matplotlib.use("Agg")

from hypothesis import settings

# Hypothesis: deterministic in CI (derandomize), fewer examples on 2 cores.
settings.register_profile("ci", max_examples=40, derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
