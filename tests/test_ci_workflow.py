"""The GitHub Actions workflow is valid and runs the same commands a person runs."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def _triggers(workflow):
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def _runs(job):
    return "\n".join(step.get("run", "") for step in job["steps"])


def _makefile_targets():
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def test_the_workflow_matches_github_s_schema():
    pytest.importorskip("check_jsonschema", reason="check-jsonschema comes with the `dev` extra")
    schema = "vendor.github-workflows"  # GitHub's workflow schema, shipped inside the package
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_on_push_pull_request_every_week_and_on_demand(workflow):
    triggers = _triggers(workflow)
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(triggers)
    (cron,) = [entry["cron"] for entry in triggers["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert day == month == "*" and weekday.isdigit(), f"not a weekly schedule: {cron}"


def test_the_pinned_row_runs_the_readme_test_command(workflow):
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")
    job = workflow["jobs"]["test"]
    steps = {step.get("run", "").strip(): step.get("if", "") for step in job["steps"]}
    assert steps.get("bash .ci/run") == "matrix.releases == 'pinned'"


def test_the_pinned_row_takes_torch_s_cpu_wheel_at_the_pinned_version(workflow):
    job = workflow["jobs"]["test"]
    assert workflow["env"]["TORCH_INDEX"] == CPU_INDEX
    install = _runs(job)
    assert '--index-url "$TORCH_INDEX"' in install and 'startswith("torch==")' in install
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("torch==") for d in deps), "the step reads torch's pin from here"


def test_the_latest_row_runs_make_test_latest_every_week(workflow):
    job = workflow["jobs"]["test"]
    assert "make test-latest" in _runs(job)
    assert "test-latest" in _makefile_targets()
    rows = job["strategy"]["matrix"]["releases"]
    assert "schedule" in rows and '"latest"' in rows and '["pinned"]' in rows
    assert "make test-latest" in (ROOT / "README.md").read_text()


def test_the_gpu_job_runs_make_gpu_test_only_where_a_gpu_runner_exists(workflow):
    job = workflow["jobs"]["gpu"]
    assert {"self-hosted", "gpu"} <= set(job["runs-on"])
    assert _runs(job).strip() == "make gpu-test"
    assert "gpu-test" in _makefile_targets()
    assert "vars.GPU_RUNNER == 'true'" in job["if"]
    assert "pull_request" in job["if"], "strangers' pull requests must not run on your machine"


def test_make_test_installs_nbgrader_for_the_grading_round_trip():
    makefile = (ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:(.*)$", makefile, re.MULTILINE).group(1)
    assert "$(GRADING_STAMP)" in test_rule
    assert re.search(r'^\$\(GRADING_STAMP\):.*\n\t.*pip install .*"\.\[grading\]"', makefile, re.M)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(r.startswith("nbgrader") for r in extras["grading"])


def test_the_latest_requirements_unpin_the_four_and_keep_every_other_pin():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "latest_requirements", ROOT / ".ci" / "latest_requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = module.latest_requirements(["dev", "grading"])
    names = [re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower() for line in lines]
    assert "torch" not in names, "torch is installed first, from the index the caller chooses"
    assert "triton; sys_platform == 'linux'" in lines  # unpinned, platform marker kept
    assert "numpy" in lines and "nbval" in lines
    assert "llvmlite==0.50.0" in lines  # every other pin stays
    assert any(line.startswith("nbgrader") for line in lines)
    with pytest.raises(SystemExit, match="unknown extra"):
        module.latest_requirements(["no-such-extra"])
