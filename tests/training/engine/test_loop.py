"""training.engine.loop's epoch accounting, shared by the single run and the packed runs."""
import pytest
import torch

from training.data.augment import Targets
from training.engine.loop import EpochTally, non_finite_loss


def test_tally_sums_loss_accuracy_and_first_bad_step_per_run():
    tally = EpochTally(2, torch.device("cpu"))
    y = torch.tensor([0, 1])
    logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0]], [[5.0, 0.0], [5.0, 0.0]]])  # run 0 right twice, run 1 once
    mixed = Targets(y, torch.tensor([1, 0]), 0.25)
    assert tally.add(torch.tensor([1.0, 2.0]), logits, [Targets(y, y, 1.0), mixed]) == 2
    assert tally.add(torch.tensor([3.0, float("nan")]), logits, [Targets(y, y, 1.0), mixed]) == 2
    assert tally.loss_sum[0].item() == 8.0 and tally.first_bad.tolist() == [-1, 1]
    # run 1 on the mixed batch: 0.25 * [pred == a] + 0.75 * [pred == b] = 0.25 * 1 + 0.75 * 1 per step
    assert tally.correct.tolist() == [4.0, 2.0] and (tally.seen, tally.steps) == (4, 2)


@pytest.mark.parametrize("who,text", [("", "step 3;"), (" of seed 7", "step 3 of seed 7;")])
def test_non_finite_loss_names_the_step_and_the_run(who, text):
    err = str(non_finite_loss(2, 3, who))
    assert err.startswith("non-finite loss at epoch 2 " + text) and "Lower --lr" in err and "\n" not in err
