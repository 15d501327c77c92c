"""The micro study shared by the figures tests (every stage on real images, seconds to minutes)."""
import pytest


@pytest.fixture(scope="session")
def micro(tmp_path_factory):
    from figures.study import main as study_main

    out = tmp_path_factory.mktemp("study") / "runs"
    assert study_main(["--preset", "micro", "--out-dir", str(out), "--device", "cpu", "--quiet"]) == 0
    return out
