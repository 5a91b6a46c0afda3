"""A training job killed past a checkpoint and resumed publishes what an uninterrupted run publishes: the same
weights, the same log (timings aside) and the same summary, so the paper's diagnostics do not depend on preemption."""

import json

import pandas as pd
import pytest
from safetensors.torch import load_file
from transformers import AutoTokenizer, TrainerCallback

from mindthegap import training
from mindthegap.io import write_parquet
from mindthegap.report import training_diagnostics

from test_training import HPARAMS, _rows

# logging windows of 2 steps, checkpoints every 3: today's windows 3-4 would span checkpoint-3
RESUMABLE = {**HPARAMS, "max_steps": 6, "logging_steps": 2, "save_steps": 3, "save_total_limit": 3}
TIMINGS = ("train_runtime", "train_samples_per_second", "train_steps_per_second")
JOB_HISTORY = ("resumed_from",)  # where this job started from: a fact about the job, not about the training


class Preempted(Exception):
    pass


class KillAfterSave(TrainerCallback):
    """The job dies right after the checkpoint of `step` is complete: what it did after is lost either way."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Preempted(f"killed after checkpoint-{self.step}")


def _without(record: dict, keys) -> dict:
    return {key: value for key, value in record.items() if key not in keys}


def _published(out) -> dict:
    log = json.loads((out / "training_log.json").read_text())
    return {"summary": _without(log["summary"], JOB_HISTORY),
            "log_history": [_without(entry, TIMINGS) for entry in log["log_history"]],
            "weights": load_file(out / "model.safetensors")}


@pytest.fixture(scope="module")
def dataset(tiny_model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "data.parquet"
    write_parquet(pd.DataFrame(_rows(AutoTokenizer.from_pretrained(tiny_model_dir))), path)
    return path


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    training.train(str(dataset), str(tiny_model_dir), str(root / "out"), str(root / "work"), RESUMABLE)
    return root / "out"


@pytest.mark.parametrize("killed_after", [3, 6], ids=["mid-window", "last-step"])
def test_resumed_training_publishes_what_an_uninterrupted_run_does(tiny_model_dir, dataset, uninterrupted, tmp_path,
                                                                    killed_after):
    work, out = tmp_path / "work", tmp_path / "out"
    with pytest.raises(Preempted):
        training.train(str(dataset), str(tiny_model_dir), str(out), str(work), RESUMABLE,
                       callbacks=[KillAfterSave(killed_after)])
    assert not out.exists()
    summary = training.train(str(dataset), str(tiny_model_dir), str(out), str(work), RESUMABLE)
    assert summary["resumed_from"].endswith(f"checkpoint-{killed_after}")

    resumed, reference = _published(out), _published(uninterrupted)
    assert resumed["summary"] == reference["summary"]
    assert resumed["log_history"] == reference["log_history"]
    assert resumed["weights"].keys() == reference["weights"].keys()
    assert all(resumed["weights"][name].equal(reference["weights"][name]) for name in reference["weights"])
    labels = {"dr_is": "DR+IS"}
    pd.testing.assert_frame_equal(training_diagnostics({"dr_is": out}, labels),
                                  training_diagnostics({"dr_is": uninterrupted}, labels))


def test_every_checkpoint_closes_a_logging_window_and_the_run_loss_weighs_windows_by_steps(uninterrupted):
    history = json.loads((uninterrupted / "training_log.json").read_text())["log_history"]
    windows = [entry for entry in history if "loss" in entry]
    assert [entry["step"] for entry in windows] == [2, 3, 4, 6]  # logging_steps 2, checkpoints 3 and 6
    assert all("weight_var/expert" in entry for entry in windows)
    expected = (2 * windows[0]["loss"] + windows[1]["loss"] + windows[2]["loss"] + 2 * windows[3]["loss"]) / 6
    assert training.run_mean_loss(history) == pytest.approx(expected)
    assert history[-1]["train_loss"] == pytest.approx(expected)


def test_training_diagnostics_weigh_each_logged_window_by_its_steps(tmp_path):
    run = tmp_path / "dr_is"
    run.mkdir()
    history = [{"loss": 1.0, "step": 2, "weight_var/self": 0.1}, {"loss": 0.5, "step": 3, "weight_var/self": 0.4},
               {"train_loss": 0.0, "step": 3, "train_runtime": 1.0}]
    (run / "training_log.json").write_text(json.dumps({"summary": {"global_steps": 3, "train_loss": 0.8333},
                                                       "log_history": history}))
    table = training_diagnostics({"dr_is": run}, {"dr_is": "DR+IS"})
    assert table.loc["DR+IS", "w var self"] == pytest.approx((2 * 0.1 + 0.4) / 3)


@pytest.mark.parametrize("loss", ["proximal", "asft"])
def test_objectives_with_the_base_model_resume_to_the_same_diagnostics(tiny_model_dir, dataset, tmp_path, loss):
    """PSFT's base log-probs come back from the work dir's cache on resume (not rescored by the moved model), and
    ASFT reloads the same frozen base: the resumed run publishes the uninterrupted run's log, weights and stats."""
    hparams = {**RESUMABLE, "loss": loss, "learning_rate": 5e-2}
    reference = tmp_path / "reference"
    training.train(str(dataset), str(tiny_model_dir), str(reference / "out"), str(reference / "work"), hparams)
    work, out = tmp_path / "work", tmp_path / "out"
    with pytest.raises(Preempted):
        training.train(str(dataset), str(tiny_model_dir), str(out), str(work), hparams, callbacks=[KillAfterSave(3)])
    training.train(str(dataset), str(tiny_model_dir), str(out), str(work), hparams)
    resumed, uninterrupted = _published(out), _published(reference / "out")
    assert resumed["log_history"] == uninterrupted["log_history"]
    assert resumed["summary"] == uninterrupted["summary"]
    assert all(resumed["weights"][name].equal(uninterrupted["weights"][name]) for name in uninterrupted["weights"])
    diagnostic = {"proximal": "clipped_fraction", "asft": "kl_to_base"}[loss]
    assert max(entry.get(diagnostic, 0.0) for entry in resumed["log_history"]) > 0  # the clip / anchor binds
