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


class RoundLog:
    """The rounds a transformers candidate generator ran: ``(candidates, matches)`` each, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def clear(self) -> None:
        self.events.clear()

    def rounds(self) -> list[tuple[int, int]]:
        return list(zip([n for e, n in self.events if e == "cand"], [n for e, n in self.events if e == "match"]))


import pytest  # noqa: E402  (after the matplotlib backend is set)


@pytest.fixture
def log_rounds(monkeypatch):
    """``log_rounds(GeneratorClass)`` wraps its ``get_candidates``/``update_candidate_strategy`` and returns a RoundLog."""

    def patch(gen) -> RoundLog:
        log = RoundLog()
        get, upd = gen.get_candidates, gen.update_candidate_strategy

        def logged_get(self, input_ids, **kw):
            out = get(self, input_ids, **kw)
            log.events.append(("cand", out[0].shape[1] - input_ids.shape[1]))
            return out

        def logged_upd(self, input_ids, scores, n):
            log.events.append(("match", int(n)))
            return upd(self, input_ids, scores, n)

        monkeypatch.setattr(gen, "get_candidates", logged_get)
        monkeypatch.setattr(gen, "update_candidate_strategy", logged_upd)
        return log

    return patch
