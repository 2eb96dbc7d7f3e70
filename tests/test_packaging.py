"""The project installs the way the README says, and its two package lists agree.

pyproject.toml (pip) and environment.yml (conda) each list every package the product and its
tests need; a package added to one and forgotten in the other breaks only the users of the
other, so the lists are compared here. The README's set-up commands and its API example are
checked too, because a README that lies is the first thing a new user meets.
"""

from __future__ import annotations

import doctest
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import mqttsim

ROOT = Path(__file__).resolve().parent.parent
# Conda packages that are tools rather than project dependencies.
CONDA_ONLY = {"python", "pip"}


def normalise(name: str) -> str:
    """PEP 503 form, so paho_mqtt, Paho.MQTT and paho-mqtt are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    """The package name of a pip requirement or a conda spec ("pandas>=2", "tomli; ...")."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if match is None:
        raise ValueError(f"no package name in {spec!r}")
    return normalise(match.group(1))


def parse_environment_yml(text: str) -> dict[str, list[str]]:
    """Read the simple subset of YAML that environment.yml uses, without needing PyYAML.

    Returns {"name": [...], "channels": [...], "dependencies": [...], "pip": [...]}: top-level
    scalars and lists, and the list under a ``- pip:`` item of ``dependencies``.
    """
    result: dict[str, list[str]] = {}
    key = None
    in_pip = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if indent == 0:
            key, _, value = item.partition(":")
            result[key] = [value.strip()] if value.strip() else []
            in_pip = False
        elif item == "- pip:" and key == "dependencies":
            in_pip = True
            result["pip"] = []
        elif item.startswith("- ") and key is not None:
            target = "pip" if in_pip and indent > 2 else key
            if target == key:
                in_pip = False
            result[target].append(item[2:].strip())
        else:
            raise ValueError(f"environment.yml line {number}: cannot read {raw!r}")
    return result


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def environment() -> dict[str, list[str]]:
    return parse_environment_yml((ROOT / "environment.yml").read_text(encoding="utf-8"))


def test_parse_environment_yml_reads_nested_pip_list() -> None:
    text = ("name: x\nchannels:\n  - conda-forge\ndependencies:\n  - python>=3.10  # note\n"
            "  - paho-mqtt\n  - pip:\n      - -e .\n  - simpy\n")
    assert parse_environment_yml(text) == {
        "name": ["x"], "channels": ["conda-forge"],
        "dependencies": ["python>=3.10", "paho-mqtt", "simpy"], "pip": ["-e ."]}


def test_parse_environment_yml_refuses_what_it_does_not_understand() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_environment_yml("dependencies:\n  simpy: 1\n")


def test_pyproject_and_environment_yml_list_the_same_packages(pyproject, environment) -> None:
    project = pyproject["project"]
    pip_names = {requirement_name(spec) for spec in project["dependencies"]}
    for group in project["optional-dependencies"].values():
        pip_names |= {requirement_name(spec) for spec in group}
    conda_names = {requirement_name(spec) for spec in environment["dependencies"]} - CONDA_ONLY
    only_pip = sorted(pip_names - conda_names)
    only_conda = sorted(conda_names - pip_names)
    assert not only_pip, f"in pyproject.toml but not environment.yml: {only_pip}"
    assert not only_conda, f"in environment.yml but not pyproject.toml: {only_conda}"


def test_environment_yml_uses_conda_forge_and_installs_the_project(pyproject,
                                                                   environment) -> None:
    assert environment["channels"] == ["conda-forge"]
    assert f"python{pyproject['project']['requires-python']}" in environment["dependencies"]
    assert environment["pip"] in (["-e ."], ["."])


def test_product_and_test_dependencies_are_declared(pyproject) -> None:
    project = pyproject["project"]
    runtime = {requirement_name(spec) for spec in project["dependencies"]}
    assert {"simpy", "pandas", "matplotlib", "networkx", "ipywidgets"} <= runtime
    extras = project["optional-dependencies"]
    assert "jupyterlab" in {requirement_name(spec) for spec in extras["lab"]}
    assert {"pytest", "pytest-timeout", "hypothesis", "paho-mqtt", "nbclient", "ipykernel"} <= {
        requirement_name(spec) for spec in extras["test"]}


def test_version_has_one_source(pyproject) -> None:
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["hatch"]["version"]["path"] == "mqttsim/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", mqttsim.__version__)
    assert importlib.metadata.version("mqttsim") == mqttsim.__version__


def test_console_script_is_installed() -> None:
    [entry] = [ep for ep in importlib.metadata.entry_points(group="console_scripts")
               if ep.name == "mqttsim"]
    assert entry.value == "mqttsim.cli:main"
    script = Path(sys.executable).parent / "mqttsim"
    assert script.exists(), f"{script} is missing: is mqttsim installed in this environment?"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "demo" in done.stdout and "decode" in done.stdout


def test_python_dash_m_mqttsim_help() -> None:
    done = subprocess.run([sys.executable, "-m", "mqttsim", "--help"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: mqttsim")


def test_readme_set_up_is_exactly_make_lab_and_make_test() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert commands == ["make lab", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^lab:", makefile, flags=re.M) and re.search(r"^test:", makefile,
                                                                   flags=re.M)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, flags=re.M)


def test_readme_examples_are_true() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```pycon\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has no pycon example"
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(verbose=False)
    failures: list[str] = []
    for number, block in enumerate(blocks, 1):
        test = parser.get_doctest(block, {}, f"README.md example {number}", "README.md", 0)
        runner.run(test, out=failures.append)
    assert runner.summarize(verbose=False).attempted > 0
    assert not failures, "\n".join(failures)
