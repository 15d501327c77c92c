"""training.store.rundir.read_config: the one reader of a run's config.json, for a directory that may be fresh
(check_run_dir) and for a finished run the figures read (required)."""
import pytest

from training.errors import UserError
from training.store.rundir import read_config


def test_read_config_missing_unreadable_and_required(tmp_path):
    assert read_config(tmp_path) is None  # a fresh directory
    with pytest.raises(UserError, match=f"config.json is missing or not valid JSON; re-run .* move {tmp_path} out"):
        read_config(tmp_path, required=True)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(UserError, match="config.json is not valid JSON; fix or delete it, or pass --overwrite"):
        read_config(tmp_path)
    with pytest.raises(UserError, match="is missing or not valid JSON; re-run the run's training command"):
        read_config(tmp_path, required=True)
    (tmp_path / "config.json").write_text('{"model": "resnet8"}')
    assert read_config(tmp_path) == read_config(tmp_path, required=True) == {"model": "resnet8"}
