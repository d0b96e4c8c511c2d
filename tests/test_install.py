"""The package as a user installs it: a wheel built from this checkout, used outside the checkout.

`pipx install .` and `pip install moodle-compliance-connector-*.whl` install exactly this wheel, so
the test builds it, unpacks it into a folder of its own and runs `connector demo` from `/`: the
demo mappings must travel inside the package, and nothing may depend on the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from connector import __version__
from tests.helpers import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_the_demo_mappings_the_licence_and_one_version(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for toml in ("courses", "departments-cz", "departments-si", "requirements", "settings"):
        assert f"connector/demo_mappings/{toml}.toml" in names
    assert "connector/py.typed" in names
    for language in ("cs", "sl"):  # the compiled catalogs: an installed connector speaks them
        assert f"connector/locale/{language}/LC_MESSAGES/connector.mo" in names
    assert f"moodle_compliance_connector-{__version__}.dist-info/licenses/LICENSE" in names
    assert wheel.name.startswith(f"moodle_compliance_connector-{__version__}-")


@pytest.mark.slow
def test_an_installed_connector_runs_the_demo_from_the_root_folder(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = dict(os.environ, PYTHONPATH=str(site))  # the installed copy comes before this checkout
    where = subprocess.run(
        [sys.executable, "-c", "import connector; print(connector.__file__)"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site))
    result = subprocess.run(
        [str(site / "bin" / "connector"), "demo"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Compliance as of ")
    assert "Jablonec" in result.stdout
