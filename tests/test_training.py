import json
import math
import os

import pandas as pd
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

from mindthegap import objectives, training
from mindthegap.io import write_parquet

PROMPT = "<|im_start|>user\nWhat is 1 + 2?<|im_end|>\n<|im_start|>assistant\n"


def test_weights_carry_no_gradient():
    logp = torch.log(torch.tensor([[0.5, 0.25]])).requires_grad_()
    weights = objectives.compute("dft", objectives.TokenInputs(logp=logp)).weights
    loss = training.weighted_nll(logp, weights, torch.ones(1, 2), None)
    loss.backward()
    # d/dlogp of sg(p) * -logp / N = -p / N
    assert torch.allclose(logp.grad, torch.tensor([[-0.25, -0.125]]))


def test_sft_weighting_is_plain_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[0, 1, 1, 1, 0], [1, 1, 0, 0, 0]])
    logp = torch.log_softmax(logits, -1).gather(2, labels[..., None]).squeeze(2)
    ours = training.weighted_nll(logp, torch.ones_like(logp), mask, None)
    reference = torch.nn.functional.cross_entropy(logits[mask.bool()], labels[mask.bool()])
    assert torch.allclose(ours, reference)


def test_encode_row_aligns_behaviour_logprobs_and_truncates_every_column(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt_len = len(tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    sampled = {"id": "a", "prompt": PROMPT, "completion": "x", "completion_token_ids": [5, 6, 2],
               "behaviour_logprobs": [-0.5, -0.25, -0.1], "source": "self"}
    row = training.encode_row(sampled, tokenizer, None)
    assert row["input_ids"][prompt_len:] == [5, 6, 2]
    assert row["labels"][:prompt_len] == [-100] * prompt_len and row["labels"][prompt_len:] == [5, 6, 2]
    assert row["behaviour_logprobs"][prompt_len:] == [-0.5, -0.25, -0.1]
    assert row["behaviour_mask"] == [0] * prompt_len + [1, 1, 1]
    short = training.encode_row(sampled, tokenizer, prompt_len + 1)
    assert {len(short[k]) for k in ("input_ids", "labels", "behaviour_logprobs", "behaviour_mask")} == {prompt_len + 1}
    expert = training.encode_row({"id": "b", "prompt": PROMPT, "completion": "3", "completion_token_ids": None,
                                  "behaviour_logprobs": None, "source": "expert"}, tokenizer, None)
    assert expert["input_ids"][-1] == tokenizer.eos_token_id and set(expert["behaviour_mask"]) == {0}
    assert expert["source_code"] == training.SOURCE_CODES["expert"]
    with pytest.raises(ValueError, match="3 tokens but 2 log-probs"):
        training.encode_row({**sampled, "behaviour_logprobs": [-1.0, -1.0]}, tokenizer, None)


def test_sampled_rows_end_with_the_models_eos_like_the_papers_responses():
    """The release trains on response text + tokenizer.eos_token. Qwen2.5-Math-7B's EOS is <|endoftext|>, but under
    the chat template it stops on <|im_end|>: that stop token becomes EOS, whose behaviour log-prob is unknown."""
    from real_tokenizers import qwen25_tokenizer

    tokenizer = qwen25_tokenizer()
    im_end, eos = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id
    sampled = {"id": "a", "prompt": PROMPT, "completion": "x", "completion_token_ids": [87, 284, im_end],
               "behaviour_logprobs": [-0.5, -0.25, -0.1], "source": "self"}
    row = training.encode_row(sampled, tokenizer, None)
    assert row["labels"][-3:] == [87, 284, eos] and row["behaviour_mask"][-3:] == [1, 1, 0]
    assert row["behaviour_logprobs"][-3:-1] == [-0.5, -0.25]
    ended = training.encode_row({**sampled, "completion_token_ids": [87, 284, eos]}, tokenizer, None)
    assert ended["labels"][-3:] == [87, 284, eos] and ended["behaviour_mask"][-3:] == [1, 1, 1]
    unended = training.encode_row({**sampled, "completion_token_ids": [87, 284, 16]}, tokenizer, None)
    assert unended["labels"][-4:] == [87, 284, 16, eos] and unended["behaviour_mask"][-4:] == [1, 1, 1, 0]


def _rows(tokenizer):
    sources = ["self", "guided", "expert", "expert"]
    rows = []
    for i, source in enumerate(sources):
        completion = f"{i} + 1 = {i + 1}.\nThe answer is \\boxed{{{i + 1}}}."
        ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        sampled = source != "expert"
        rows.append({"id": f"p{i}", "prompt": PROMPT, "completion": completion,
                     "completion_token_ids": ids if sampled else None,
                     "behaviour_logprobs": [-1.0] * len(ids) if sampled else None, "source": source})
    return rows


def _trainer(tiny_model_dir, tmp_path, **kwargs):
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = Dataset.from_list([training.encode_row(r, tokenizer, 128) for r in _rows(tokenizer)])
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to="none", use_cpu=True,
                     gradient_checkpointing=False,
                     remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True},
                     loss_type=kwargs.pop("loss_type", "nll"))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    cls = training._trainer_class() if "loss" in kwargs else SFTTrainer
    trainer = cls(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                  data_collator=training.WeightedCollator(tokenizer.pad_token_id), **kwargs)
    batch = training.WeightedCollator(tokenizer.pad_token_id)([data[i] for i in range(len(data))])
    return trainer, batch


@pytest.mark.parametrize("ours,trl_type", [("dft", "dft"), ("sft", "nll")])
def test_losses_equal_trl_builtin(tiny_model_dir, tmp_path, ours, trl_type):
    """Our weighted loss reproduces TRL's own nll and dft losses on the same batch."""
    mine, batch = _trainer(tiny_model_dir, tmp_path / "ours", loss=ours)
    reference, _ = _trainer(tiny_model_dir, tmp_path / "trl", loss_type=trl_type)
    mine.model.train(), reference.model.train()
    num_items = (batch["labels"][:, 1:] != -100).sum()
    ours_loss = mine.compute_loss(mine.model, dict(batch), num_items_in_batch=num_items)
    trl_inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
    trl_loss = reference.compute_loss(reference.model, trl_inputs, num_items_in_batch=num_items)
    assert torch.allclose(ours_loss, trl_loss, atol=1e-6)


def test_is_weights_logged_per_source(tiny_model_dir, tmp_path):
    trainer, batch = _trainer(tiny_model_dir, tmp_path, loss="is", loss_args={"clip": 2.0, "expert_weight": "dft"})
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, dict(batch))
    assert torch.isfinite(loss)
    logged = trainer._metrics["train"]
    for source in ("self", "guided", "expert"):
        assert f"weight_mean/{source}" in logged
    assert logged["weight_mean/self"][0] <= 2.0  # the clip


HPARAMS = {"learning_rate": 1e-3, "global_batch_size": 2, "per_device_batch_size": 2, "max_length": 128,
           "epochs": 1, "lr_scheduler": "cosine", "warmup_ratio": 0.1, "weight_decay": 0.01, "adam_beta1": 0.9,
           "adam_beta2": 0.95, "max_grad_norm": 1.0, "bf16": False, "save_steps": 1, "seed": 0, "loss": "is",
           "is_clip": 2.0, "is_expert_weight": "dft", "logging_steps": 1, "disable_tqdm": True}


def test_train_publishes_a_model_and_resumes_from_its_last_checkpoint(tiny_model_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    dataset = tmp_path / "data.parquet"
    write_parquet(pd.DataFrame(_rows(tokenizer)), dataset)
    work, out = tmp_path / "work", tmp_path / "out"
    umask = os.umask(0o022)
    try:
        first = training.train(str(dataset), str(tiny_model_dir), str(out), str(work), {**HPARAMS, "max_steps": 1})
    finally:
        os.umask(umask)
    assert {oct(path.stat().st_mode & 0o777) for path in out.iterdir()} == {"0o644"}, "readable by colleagues"
    assert first["global_steps"] == 1 and first["resumed_from"] is None
    assert (work / "checkpoint-1").is_dir()
    # A requeued job with the same work dir continues from checkpoint-1 instead of starting over.
    second = training.train(str(dataset), str(tiny_model_dir), str(out), str(work), {**HPARAMS, "max_steps": 2})
    assert second["resumed_from"].endswith("checkpoint-1") and second["global_steps"] == 2
    log = json.loads((out / "training_log.json").read_text())
    assert any("weight_mean/self" in entry for entry in log["log_history"])
    assert AutoModelForCausalLM.from_pretrained(out) is not None
    assert math.isfinite(second["train_loss"])


# --- precision and publishing at scale ---------------------------------------------------------------------------


def test_bf16_is_autocast_never_a_reason_to_refuse_or_drop_it():
    assert training.bf16_autocast(True, cuda=True, cuda_bf16=True)
    assert training.bf16_autocast(True, cuda=False)  # CPU autocast
    assert not training.bf16_autocast(False, cuda=True, cuda_bf16=True)
    with pytest.raises(RuntimeError, match="no bf16 support: set training.bf16: false"):
        training.bf16_autocast(True, cuda=True, cuda_bf16=False)


def test_bf16_training_keeps_fp32_master_weights_of_a_bf16_checkpoint(tiny_model_dir, tmp_path):
    """bf16 requested, checkpoint saved in bf16 (as Qwen2.5-Math-7B is): the optimizer still updates fp32 weights
    and the steps run under bf16 autocast."""
    bf16_model = tmp_path / "bf16-model"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).save_pretrained(bf16_model)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(bf16_model)
    assert json.loads((bf16_model / "config.json").read_text())["dtype"] == "bfloat16"
    tokenizer = AutoTokenizer.from_pretrained(bf16_model)
    dataset = tmp_path / "data.parquet"
    write_parquet(pd.DataFrame(_rows(tokenizer)), dataset)
    summary = training.train(str(dataset), str(bf16_model), str(tmp_path / "out"), str(tmp_path / "work"),
                             {**HPARAMS, "bf16": True, "max_steps": 2})
    assert summary["mixed_precision"] == "bf16" and summary["master_weights"] == ["torch.float32"]
    assert math.isfinite(summary["train_loss"])


def test_optimizer_dtypes_sees_bf16_weights():
    bf16 = torch.nn.Linear(2, 2).to(torch.bfloat16)
    assert training.optimizer_dtypes(torch.optim.AdamW(bf16.parameters())) == ["torch.bfloat16"]


@pytest.mark.parametrize("rank", [0, 1])
def test_only_world_process_zero_writes_tokenizer_and_log(tiny_model_dir, tmp_path, monkeypatch, rank):
    """A fake world: the Trainer's process index says `rank`; only rank 0 may write into the output directory
    (the Trainer's save_model is rank-aware; the tokenizer and the log are ours)."""
    from transformers import TrainingArguments

    trainer, _ = _trainer(tiny_model_dir, tmp_path / "work", loss="sft")
    monkeypatch.setattr(TrainingArguments, "process_index", property(lambda self: rank))
    out = tmp_path / "out"
    training.publish(trainer, trainer.processing_class, out, {"train_loss": 1.0})
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if rank == 0:
        assert {"config.json", "model.safetensors", "tokenizer.json", "training_log.json"} <= set(written)
    else:
        assert written == []


def test_training_refuses_to_start_on_bf16_master_weights(tiny_model_dir, tmp_path):
    """Today's bug, caught at the first step: a model loaded in bf16 would give the optimizer bf16 weights."""
    from trl import SFTConfig

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = Dataset.from_list([training.encode_row(r, tokenizer, 128) for r in _rows(tokenizer)])
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to="none", use_cpu=True,
                     max_steps=1, remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True})
    trainer = training._trainer_class()(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16), args=args,
        train_dataset=data, processing_class=tokenizer, data_collator=training.WeightedCollator(tokenizer.pad_token_id),
        loss="sft", callbacks=[training._master_weights_check()])
    with pytest.raises(RuntimeError, match=r"optimizer updates \['torch.bfloat16'\] weights"):
        trainer.train()
