"""The two ways to install the course (pip and conda) install the same thing."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment_yml():
    """A minimal reader for environment.yml's dependency lists: (conda packages, pip lines)."""
    conda, pip, section, in_pip = [], [], None, False
    for raw in (ROOT / "environment.yml").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line.startswith(" "):
            section = line.rstrip(":")
            continue
        if section != "dependencies" or not line.strip().startswith("- "):
            continue
        item = line.strip()[2:].strip()
        indent = len(line) - len(line.lstrip())
        if item == "pip:":
            in_pip = True
        elif in_pip and indent > 2:
            pip.append(item.replace('"', ""))
        else:
            in_pip = False
            conda.append(item)
    return conda, pip


def test_conda_environment_installs_this_project_with_the_makefile_extras():
    _, pip = _environment_yml()
    makefile = (ROOT / "Makefile").read_text()
    extras = re.search(r'pip install --quiet -e "\.\[([a-z,]+)\]"', makefile).group(1)
    assert pip == [f"-e .[{extras}]"]


def test_conda_packages_pin_nothing_that_pyproject_pins_differently():
    conda, _ = _environment_yml()
    project = _pyproject()["project"]
    pins = {}
    for requirement in project["dependencies"] + sum(project["optional-dependencies"].values(), []):
        match = re.match(r"([A-Za-z0-9_.-]+)\s*==\s*([^;\s]+)", requirement)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    for package in conda:
        name, _, version = package.partition("=")
        name = name.strip().lower()
        if name == "python":
            minimum = project["requires-python"].removeprefix(">=")
            assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.split("."))), (
                package
            )
        elif name in pins:
            assert version.lstrip("=") == pins[name], (
                f"{package} but pyproject.toml pins {pins[name]}"
            )
        else:
            assert name == "pip", f"{package}: install it through pyproject.toml, not only in conda"


def test_the_pinned_torch_and_triton_pair():
    deps = _pyproject()["project"]["dependencies"]
    assert "torch==2.13.0" in deps
    assert any(d.startswith("triton==3.7.1") for d in deps), (
        "torch 2.13's CUDA build requires triton 3.7.1"
    )
    assert "llvmlite==0.50.0" in deps


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
