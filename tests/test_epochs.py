"""pose_utils.training.epochs: the loop over epochs, with plain Python steps whose sums are known by hand."""

import numpy as np
import pytest

from pose_utils.training.epochs import RECORDED_KEYS, run_epochs


def empty_history(**extra):
    return {**{key: [] for key in RECORDED_KEYS}, **extra}


def test_means_are_over_clips_and_mpjpe_is_in_millimetres():
    # Batches of 3 and 1 clips: the mean of the two batch means (0.3) is not the mean over the clips (0.2).
    history = empty_history()
    run_epochs(lambda e: [np.array([0.3, 0.3, 3]), np.array([0.5, 0.3, 1])],
               lambda e: np.array([1.2, 0.6, 4]), history, epochs=1)
    assert history["train_loss"] == pytest.approx([0.2])
    assert history["train_mpjpe"] == pytest.approx([150.0])
    assert history["val_loss"] == pytest.approx([0.3])
    assert history["val_mpjpe"] == pytest.approx([150.0])


def test_each_epoch_starts_from_zero_and_resume_appends_after_the_recorded_epochs():
    sums = {1: [[0.6, 0.6, 4]], 2: [[0.4, 0.32, 4]]}
    log = []
    history = {key: [9.0] for key in RECORDED_KEYS} | {"epoch_seconds": [1.0]}
    run_epochs(lambda e: (log.append(("train", e)) or sums[e]),
               lambda e: (log.append(("validate", e)) or [0.8, 0.4, 4]),
               history, epochs=3, start=1,
               after_epoch=lambda e, h: log.append(("after", e, len(h["val_mpjpe"]))))
    assert history["train_loss"] == pytest.approx([9.0, 0.15, 0.1])
    assert history["train_mpjpe"] == pytest.approx([9.0, 150.0, 80.0])
    assert history["epoch_seconds"] == [1.0]  # the engine's column, left alone
    assert log == [("train", 1), ("validate", 1), ("after", 1, 2),
                   ("train", 2), ("validate", 2), ("after", 2, 3)]


def test_a_finished_run_trains_nothing():
    history = empty_history()
    run_epochs(lambda e: pytest.fail("trained"), lambda e: pytest.fail("validated"), history,
               epochs=2, start=2)
    assert history == empty_history()


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="start must be between 0 and epochs"):
        run_epochs(lambda e: [], lambda e: [0, 0, 1], empty_history(), epochs=2, start=3)
    with pytest.raises(KeyError, match="val_mpjpe"):
        run_epochs(lambda e: [], lambda e: [0, 0, 1], {"train_loss": [], "val_loss": [], "train_mpjpe": []},
                   epochs=1)
