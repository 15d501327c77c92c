"""figures.captions.refuse_embedded_subset: the one refusal of full-size tables from runs on the embedded subset
(figures.make, Tables 1-3 and Tables 4-5 call it); the shared names the figures take from one source each."""
from pathlib import Path

import pytest

from figures.analysis.plan import DEMO, PRESETS
from figures.augment.plan import MICRO as AUGMENT_MICRO
from figures.captions import refuse_embedded_subset
from training.config import TrainConfig, milestone_epochs
from training.engine.schedules import KD_METHODS
from training.errors import UserError


def test_refuse_embedded_subset_names_the_first_such_run():
    refuse_embedded_subset({Path("a"): {"data_dir": "/data"}})
    with pytest.raises(UserError, match=r"^run b was trained on the embedded 5,000-image subset, not the real "
                                        r"dataset; full-size tables need runs trained with --data-dir \(for demo "
                                        r"runs pass --preset demo\)$"):
        refuse_embedded_subset({Path("a"): {"data_dir": "/data"}, Path("b"): {"data_dir": None}, Path("c"): {}})


@pytest.mark.parametrize("spec", list(PRESETS.values()))
def test_surface_epochs_are_the_training_milestones(spec):
    train = TrainConfig(epochs=spec.epochs, lr_milestones=spec.lr_milestones)
    assert list(spec.surface_epochs) == train.milestone_epochs() == milestone_epochs(spec.lr_milestones, spec.epochs)
    assert milestone_epochs((80, 120, 160, 200), 160) == [80, 120, 160] and DEMO.surface_epochs == (2, 4, 6)


def test_augment_runs_use_the_schedules_kd_methods():
    setting = AUGMENT_MICRO.settings(AUGMENT_MICRO.tables[0])[0]
    methods = {kd: AUGMENT_MICRO.config(setting, kd, False, 0).method for kd in (None, *KD_METHODS)}
    assert methods == {None: "scratch", "label": "label_kd", "feature": "feature_kd"}
