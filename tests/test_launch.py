"""Training launch (mindthegap.launch): the process layout per GPU/node count, and the resumable work directory."""

import json

import pytest

from mindthegap.launch import (RENDEZVOUS_PORTS, fingerprint, gradient_accumulation, launch_command,
                               prepare_work_dir, rendezvous_port, train_argv, training_layout)

ARGV = train_argv("d.parquet", "m", "out", "work", {"loss": "sft"})


def test_one_node_several_gpus_is_one_accelerate_launch():
    cmd = launch_command(ARGV, gpus_per_node=8, config_file="envs/accelerate/fsdp.yaml", python="py")
    assert cmd[:3] == ["py", "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "8" and cmd[cmd.index("--num_machines") + 1] == "1"
    assert cmd[cmd.index("--module") + 1:cmd.index("--module") + 3] == ["mindthegap.cli", "train"]
    assert "srun" not in cmd


def test_several_nodes_start_one_launcher_per_node_through_srun():
    cmd = launch_command(ARGV, gpus_per_node=4, nodes=2, cpus_per_node=16, config_file="c.yaml", python="py",
                         job_id="77")
    assert cmd[0] == "srun" and "--ntasks-per-node=1" in cmd and "--nodes=2" in cmd and "--gpus-per-node=4" in cmd
    script = cmd[-1]
    assert "--num_processes 8" in script and "--num_machines 2" in script
    # rank and rendezvous host are computed inside the srun step (the job's own shell lacks SLURM_JOB_NODELIST)
    assert '--machine_rank "$SLURM_NODEID"' in script and "scontrol show hostnames" in script


def test_one_node_jobs_let_the_launcher_pick_a_free_port():
    """Two training jobs on one node must not both bind 29500: port 0 makes accelerate bind a free one."""
    cmd = launch_command(ARGV, gpus_per_node=2, config_file="c.yaml", python="py")
    assert cmd[cmd.index("--main_process_port") + 1] == "0"
    assert cmd.index("--main_process_port") < cmd.index("--module")  # a launcher flag, not one of the program's


def test_multi_node_port_is_agreed_from_the_job_id_and_differs_between_jobs(monkeypatch):
    ports = {rendezvous_port(job) for job in range(1000, 1100)}
    assert len(ports) == 100 and all(port in RENDEZVOUS_PORTS for port in ports)
    assert max(RENDEZVOUS_PORTS) < 32768, "below Linux's ephemeral ports, where port-0 picks come from"
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    script = launch_command(ARGV, gpus_per_node=4, nodes=2, config_file="c.yaml", python="py")[-1]
    assert f"--main_process_port {rendezvous_port(4242)} " in script  # one number, the same on every node
    monkeypatch.delenv("SLURM_JOB_ID")
    with pytest.raises(RuntimeError, match="needs SLURM_JOB_ID"):
        launch_command(ARGV, gpus_per_node=4, nodes=2, config_file="c.yaml", python="py")


def test_gradient_accumulation_makes_the_global_batch_exactly():
    assert gradient_accumulation(256, 4, 8) == 8 and gradient_accumulation(256, 4, 16) == 4
    with pytest.raises(ValueError, match=r"global_batch_size=256 is not a multiple of .* \(4\) × training "
                                         r"processes \(3\) = 12"):
        gradient_accumulation(256, 4, 3)


def test_a_layout_change_is_a_different_fingerprint(tmp_path):
    dataset = tmp_path / "d.parquet"
    dataset.write_bytes(b"rows")
    hparams = {"global_batch_size": 256, "per_device_batch_size": 4}
    eight, four = training_layout(hparams, 8, 1), training_layout(hparams, 4, 1)
    assert eight["gradient_accumulation_steps"] == 8 and four["gradient_accumulation_steps"] == 16
    assert fingerprint(str(dataset), "m", hparams, None, eight) != fingerprint(str(dataset), "m", hparams, None, four)


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

    from helpers import paper_config, plan_jobs

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = paper_config()
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


def _planned_train_layout(tmp_path, **resources):
    from helpers import paper_config, plan_jobs

    cfg = paper_config()
    cfg["resources"].update(resources)
    tmp_path.mkdir()
    train = next(job for job in plan_jobs(cfg, tmp_path) if job.rule.name == "train")
    return train.params.layout


def test_gpu_count_is_a_train_param_so_a_new_layout_retrains(tmp_path, monkeypatch):
    """Snakemake reruns a job whose params changed: the layout (and with it the accumulation) is one of them."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    eight = _planned_train_layout(tmp_path / "a", training_gpus=8)
    two_nodes = _planned_train_layout(tmp_path / "b", training_gpus=8, training_nodes=2)
    assert eight == {"gpus_per_node": 8, "nodes": 1, "world_size": 8, "per_device_batch_size": 4,
                     "gradient_accumulation_steps": 8}
    assert two_nodes["world_size"] == 16 and two_nodes["gradient_accumulation_steps"] == 4
    with pytest.raises(Exception, match="not a multiple of per_device_batch_size"):
        _planned_train_layout(tmp_path / "c", training_gpus=3)
