"""The package list, which pyproject.toml cannot say: dcli from dcli/, and the server's sources
from server/ installed as the package dcli_server (so the tree shows proto/ dcli/ server/ tests/
side by side). Everything else about the project is in pyproject.toml."""
from setuptools import find_packages, setup

SERVER = ["dcli_server", *(f"dcli_server.{name}" for name in find_packages("server"))]

setup(packages=[*find_packages(include=["dcli", "dcli.*"]), *SERVER], package_dir={"dcli_server": "server"})
