"""pyproject.toml and environment.yml must ask for the same packages (no conda channel here)."""

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {"jupyterlab", "numpy", "matplotlib", "nbgrader", "sympy"}


def split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement).groups()
    return name.lower().replace("_", "-"), spec.replace(" ", "")


def pyproject_deps() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(split(r) for r in project["dependencies"])


def conda_deps() -> dict:
    """The plain `- name spec` lines of environment.yml's dependencies (python and pip aside)."""
    deps, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        if in_deps and re.match(r"^  - [^\s]", line):
            name, spec = split(line[4:])
            if name not in {"python", "pip"}:
                deps[name] = spec
    return deps


def test_required_packages_are_declared():
    assert REQUIRED <= set(pyproject_deps()), REQUIRED - set(pyproject_deps())


def test_environment_yml_matches_pyproject():
    assert conda_deps() == pyproject_deps()


def test_environment_yml_installs_the_project_itself():
    assert re.search(r"^\s+- -e \.$", (ROOT / "environment.yml").read_text(), re.M)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 tasks.py test" in readme.split("\n## ")[0], (
        "README must give the test command at the top"
    )
    assert "python3 tasks.py lab" in readme.split("\n## ")[0], (
        "README must give the lab command at the top"
    )
    assert re.search(r"^exec python3 tasks.py test$", ci, re.M)


def test_environment_yml_specs_are_satisfied_by_the_pip_install():
    """What conda would install is what pip installed here: every spec is met by this venv."""
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    for name, spec in conda_deps().items():
        assert version(name) in SpecifierSet(spec), (
            f"{name} {version(name)} does not satisfy {spec}"
        )


def test_package_data_patterns_match_files():
    """Every package-data pattern names files that exist (no folder declared that is not there)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, patterns in data["package-data"].items():
        for pattern in patterns:
            assert list((ROOT / package).glob(pattern)), f"{package}/{pattern} matches no file"
