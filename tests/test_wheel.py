"""The wheel built from the repository works outside it: its files include the embedded
CIFAR-10 subset, the LICENSE and the seven console scripts; installed into a folder and run from another
directory, every package resolves there (not to the repository), and a surface, a checkpoint's surface through
``python -m landscape.plot`` and a NASWOT score run. A user's own ``training/`` package is named in one line."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("orthokd", "training", "landscape", "diversity", "figures")
SCRIPTS = ("orthokd-train", "orthokd-prune", "orthokd-prune-schedule", "orthokd-landscape", "orthokd-diversity",
           "orthokd-figures", "orthokd-study")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the wheel, the folder it is installed in). Built from a copy of the sources, so a stale build/ folder of
    the checkout cannot add files to it."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, cwd=tmp, capture_output=True)
    wheel = next((tmp / "dist").glob("orthokd-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)], check=True,
                   capture_output=True)
    return wheel, tmp / "site"


def run_outside(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_holds_data_license_and_scripts(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        metadata = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {"training/data/embedded/cifar10-mini/cifar10-mini-train.npz",
            "training/data/embedded/cifar10-mini/cifar10-mini-test.npz"} <= set(names)
    assert any(n.endswith("licenses/LICENSE") for n in names) and "License-Expression: MIT" in metadata
    assert all(f"{s} = orthokd.console:" in entry_points for s in SCRIPTS)
    assert "Provides-Extra: study" in metadata and "Requires-Dist: torch==" not in metadata
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


SCRIPT = """
import torch, torch.nn as nn
import orthokd, training, landscape, diversity, figures
from training.data.datasets import load_split
site = {site!r}
for m in (orthokd, training, landscape, diversity, figures):
    assert m.__file__.startswith(site), (m.__name__, m.__file__)
data = load_split("cifar10", "train", max_images=40)
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(4, 10))
s = landscape.surface(model, (data.normalized(), data.labels), steps=3, device="cpu")
s.save("s.vtk")
print("centre", float(s.loss[s.centre_index()]), "naswot", diversity.naswot(model, data.normalized()[:8]))
"""


def test_installed_wheel_runs_outside_the_repository(installed, tiny_checkpoint, tmp_path):
    _, site = installed
    r = run_outside(site, tmp_path, "-c", SCRIPT.format(site=str(site)))
    assert r.returncode == 0, r.stderr
    centre, naswot = float(r.stdout.split()[1]), float(r.stdout.split()[3])
    assert 1.0 < centre < 5.0 and naswot < -8.0 and (tmp_path / "s.vtk").stat().st_size > 0
    r = run_outside(site, tmp_path, "-m", "landscape.plot", str(tiny_checkpoint), "--out", "surf.vtk",
                    "--steps", "3", "--max-images", "32", "--quiet", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "surf.vtk").exists() and (tmp_path / "surf.vtk.pvpython.py").exists()


def test_a_users_training_package_is_named_in_one_line(installed, tmp_path):
    _, site = installed
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "__init__.py").write_text("")
    r = run_outside(site, tmp_path, "-m", "landscape.plot", "--help")
    assert r.returncode == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith("error: orthokd's package 'training' is shadowed by")
    assert str(tmp_path / "training" / "__init__.py") in line and "rename that package" in line
    r = run_outside(site, tmp_path, "-c", "import diversity")
    assert r.returncode == 1 and "ShadowedPackageError: orthokd's package 'training' is shadowed" in r.stderr
