"""Project promises: README commands, .ci/run, and example scripts whose output is committed."""

import importlib.util
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _block_after(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(re.escape(marker) + r"\s*```\n(.*?)\n```", text, re.S)
    assert m, f"README has no code block after {marker}"
    return m.group(1).strip()


def test_readme_opens_with_the_two_commands():
    main_cmd = _block_after("<!-- main-command -->")
    test_cmd = _block_after("<!-- test-command -->")
    assert main_cmd.startswith("pip install") and "simspec demo" in main_cmd
    assert test_cmd.startswith("pip install") and "pytest" in test_cmd


def test_ci_runs_the_readme_test_command():
    awk = (ROOT / ".ci/run").read_text()
    script = awk.split("cmd=$(", 1)[1].split(")\n", 1)[0]
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == _block_after("<!-- test-command -->")


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dsi_heatmap_experiment_reproduces_its_committed_summary(tmp_path, capsys):
    mod = _load(ROOT / "experiments/dsi_heatmap/run.py")
    assert mod.main(["--out", str(tmp_path), "--no-png", "--seed", "0"]) == 0
    capsys.readouterr()
    strip = lambda s: [l for l in s.splitlines() if " in " not in l or not l.startswith("Paper protocol")]
    fresh = strip((tmp_path / "summary.md").read_text())
    committed = strip((ROOT / "experiments/dsi_heatmap/out/summary.md").read_text())
    assert fresh == committed  # everything but the timing line is deterministic
    for name in ("paper", "repo"):
        assert (tmp_path / name / "heatmap.csv").exists()
        meta = (tmp_path / name / "heatmap.json").read_text()
        assert meta == (ROOT / "experiments/dsi_heatmap/out" / name / "heatmap.json").read_text()
