"""training.store.poolable: which runs may share a table row or a table."""
from __future__ import annotations

import pytest

from training.config import TrainConfig
from training.errors import UserError
from training.store.poolable import check_poolable


def _cfg(**changes) -> dict:
    return {**TrainConfig(**changes).to_json(), "teacher_sha256": None, "train_images": 5000}


def test_a_row_pools_seeds_only():
    check_poolable([("a", _cfg(seed=0)), ("b", _cfg(seed=1))], "row")
    with pytest.raises(UserError, match=r"runs a and b differ in width \(16 vs 8\)"):
        check_poolable([("a", _cfg(seed=0)), ("b", _cfg(seed=1, width=8))], "row")


def test_a_table_pools_methods_but_one_teacher():
    kd = dict(method="label_kd", teacher="t.pt")
    check_poolable([("s", _cfg()), ("k", {**_cfg(**kd), "teacher_sha256": "x"})], "table")
    with pytest.raises(UserError, match="teacher_sha256"):
        check_poolable([("k1", {**_cfg(**kd), "teacher_sha256": "x"}), ("k2", {**_cfg(**kd), "teacher_sha256": "y"})],
                       "table")
    with pytest.raises(UserError, match="differ in epochs"):
        check_poolable([("s", _cfg()), ("k", _cfg(method="cutmix", epochs=10))], "table")


def test_a_config_written_before_a_key_existed_pools_with_its_default():
    old = _cfg(seed=0)
    del old["shortcut"], old["normalization"]
    check_poolable([("old", old), ("new", _cfg(seed=1))], "row")
    with pytest.raises(UserError, match="differ in shortcut"):
        check_poolable([("old", old), ("new", _cfg(seed=1, shortcut="conv"))], "row")


def test_check_table_checks_rows_then_the_table_and_table_config_names_its_teacher():
    from training.store.poolable import check_table, table_config

    scratch, kd = _cfg(), {**_cfg(method="label_kd", teacher="t.pt"), "teacher_sha256": "x"}
    with pytest.raises(UserError, match="runs s0 and s1 differ in width"):
        check_table({"scratch": [("s0", scratch), ("s1", _cfg(seed=1, width=8))], "label_kd": [("k0", kd)]})
    with pytest.raises(UserError, match="runs s0 and k0 differ in lr"):
        check_table({"scratch": [("s0", scratch)], "label_kd": [("k0", {**kd, "lr": 0.05})]})
    assert table_config([scratch, kd]) is kd and table_config([scratch]) is scratch
