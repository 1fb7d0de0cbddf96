"""The installed library is the checkout's: every package under lib/ is listed in pyproject.toml."""

import tomllib

from setuptools import find_packages

from lib.paths import REPO_ROOT


def test_every_lib_package_is_installed():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(REPO_ROOT), include=["lib", "lib.*"]))
    missing = found - set(config["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert config["package-dir"]["lib.bundled"] == "data"
