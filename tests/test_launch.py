"""Training launch (mindthegap.launch): the process layout per GPU/node count, and the resumable work directory."""

import json

import pytest

from mindthegap.launch import launch_command, prepare_work_dir, train_argv

ARGV = train_argv("d.parquet", "m", "out", "work", {"loss": "sft"})


def test_one_node_several_gpus_is_one_accelerate_launch():
    cmd = launch_command(ARGV, gpus_per_node=8, config_file="envs/accelerate/fsdp.yaml", python="py")
    assert cmd[:3] == ["py", "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "8" and cmd[cmd.index("--num_machines") + 1] == "1"
    assert cmd[cmd.index("--module") + 1:cmd.index("--module") + 3] == ["mindthegap.cli", "train"]
    assert "srun" not in cmd


def test_several_nodes_start_one_launcher_per_node_through_srun():
    cmd = launch_command(ARGV, gpus_per_node=4, nodes=2, cpus_per_node=16, config_file="c.yaml", python="py")
    assert cmd[0] == "srun" and "--ntasks-per-node=1" in cmd and "--nodes=2" in cmd and "--gpus-per-node=4" in cmd
    script = cmd[-1]
    assert "--num_processes 8" in script and "--num_machines 2" in script
    # rank and rendezvous host are computed inside the srun step (the job's own shell lacks SLURM_JOB_NODELIST)
    assert '--machine_rank "$SLURM_NODEID"' in script and "scontrol show hostnames" in script


def test_work_dir_is_kept_for_the_same_inputs_and_discarded_otherwise(tmp_path):
    work = tmp_path / "work"
    assert not prepare_work_dir(work, {"hparams": 1})
    (work / "checkpoint-4").mkdir()
    (work / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (work / "checkpoint-8").mkdir()  # killed while saving: no trainer_state.json
    assert prepare_work_dir(work, {"hparams": 1})
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-4"]
    assert not prepare_work_dir(work, {"hparams": 2}), "checkpoints of other settings must not be resumed"
    assert json.loads((work / "fingerprint.json").read_text()) == {"hparams": 2}


def test_cli_has_a_train_verb():
    from mindthegap.cli import build_parser

    args = build_parser().parse_args(["train", *ARGV])
    assert json.loads(args.hparams) == {"loss": "sft"} and args.work_dir == "work"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--dataset", "d"])


@pytest.mark.parametrize("nodes", [1, 2])
def test_training_sbatch_line_from_config(tmp_path, monkeypatch, nodes):
    """The sbatch line the SLURM plugin builds for a training job, for one node and for two (multi-node variant)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    from helpers import load_config, plan_jobs

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_config("config.yaml")
    cfg["resources"].update(training_nodes=nodes, training_gpus=4, gpu_model="h100")
    train = next(job for job in plan_jobs(cfg, tmp_path) if job.rule.name == "train")
    call = get_submit_command(train, dict(run_uuid="u", slurm_logfile="l", comment_str="rule_train", account="",
                                          partition="-p gpu", workdir="."))
    call += set_gres_string(train)  # the plugin appends the GPU request after the rest (as run_job does)
    assert "--requeue" in call.split()
    if nodes == 1:
        assert "--gpus=h100:4" in call and "--nodes" not in call and "--ntasks" not in call
    else:
        assert "--nodes=2" in call and "--ntasks=2" in call and "--gpus-per-node=h100:4" in call
        assert "--gpus=" not in call and "--ntasks-per-gpu" not in call
