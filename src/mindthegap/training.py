"""Weighted SFT with TRL: a collator that carries the per-token columns (behaviour log-probs, the base model's
log-probs), and a small `SFTTrainer` subclass whose `compute_loss` applies an objective of the registry
(mindthegap.objectives: sft, dft, is, power, asft, proximal), L = sum_t m_t * loss_t / N over the N response tokens.

Objectives that need the base model: `proximal` reads the base model's per-token log-probs, scored once before the
first step by a no-grad pass of the initial model and cached in the job's work dir (`base_logprobs-*.parquet`: a
resumed job reads them back); `asft` loads a frozen copy of the base model and runs it forward at every step.

Precision: the weights the optimizer updates (and its states) are always fp32, loaded as fp32 whatever dtype the
checkpoint was saved in; `bf16: true` means bf16 autocast of the forward and backward passes (the Trainer's
`bf16=True`), on every strategy. FSDP (envs/accelerate/fsdp.yaml) keeps its sharded flat parameters in the loaded
fp32 and gathers them in bf16 for compute; DeepSpeed's bf16 mode keeps fp32 master partitions by design.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mindthegap import objectives
from mindthegap.objectives import BASE_LOGPROBS

log = logging.getLogger(__name__)

SOURCE_CODES = {"self": 0, "guided": 1, "expert": 2, "released": 3}  # released: the authors' data (mindthegap.released)
MASTER_DTYPE = torch.float32  # parameters and optimizer states; bf16 is only the compute precision (autocast)


def bf16_autocast(requested: bool, *, cuda: bool | None = None, cuda_bf16: bool | None = None) -> bool:
    """Whether the Trainer runs in bf16 autocast (`bf16=True`): when the config asks for it, on the CPU or on a
    GPU that computes in bf16. A GPU without bf16 (e.g. V100) is an error, not a silent switch to fp32."""
    if not requested:
        return False
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda and not (torch.cuda.is_bf16_supported() if cuda_bf16 is None else cuda_bf16):
        raise RuntimeError("training.bf16 is true but this GPU has no bf16 support: set training.bf16: false")
    return True


def reduce_tokens(per_token: torch.Tensor, mask: torch.Tensor, num_items: torch.Tensor | int | None) -> torch.Tensor:
    """sum_t m_t loss_t / N, with N the number of response tokens (TRL's `num_items_in_batch` when given)."""
    total = mask.sum() if num_items is None else num_items
    return (per_token * mask).sum() / torch.as_tensor(total, device=per_token.device).clamp(min=1)


def weighted_nll(logp: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor, num_items: torch.Tensor | int | None
                 ) -> torch.Tensor:
    """sum m_t w_t (-log p) / N: the loss of every pure re-weighting (sft, dft, is, power)."""
    return reduce_tokens(weights * -logp, mask, num_items)


def weight_stats(weights: torch.Tensor, mask: torch.Tensor, sources: torch.Tensor) -> dict[str, float]:
    """Mean, variance and normalised effective sample size of the token weights, per source."""
    stats = {}
    for name, code in SOURCE_CODES.items():
        selected = weights[(sources[:, None] == code).expand_as(mask) & mask.bool()]
        if selected.numel():
            ess = selected.sum() ** 2 / (selected.pow(2).sum() * selected.numel()).clamp(min=1e-12)
            stats.update({f"weight_mean/{name}": selected.mean().item(),
                          f"weight_var/{name}": selected.var(unbiased=False).item(),
                          f"weight_ess/{name}": ess.item()})
    return stats


# --- data ----------------------------------------------------------------------------------------------------


def encode_row(row: dict[str, Any], tokenizer, max_length: int | None) -> dict[str, Any]:
    """Token ids, labels and per-token behaviour log-probs of one training row.

    Sampled rows keep the exact token ids they were sampled with, so the stored log-probs stay aligned; expert rows
    are tokenized here and end with EOS. Every per-token column is truncated like `input_ids` (keep the start).
    """
    prompt_ids = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
    if row.get("completion_token_ids") is not None:
        completion_ids = [int(t) for t in row["completion_token_ids"]]
        behaviour = [float(x) for x in row["behaviour_logprobs"]]
        if len(behaviour) != len(completion_ids):
            raise ValueError(f"row {row.get('id')}: {len(completion_ids)} tokens but {len(behaviour)} log-probs")
        completion_ids, behaviour, known = end_with_eos(completion_ids, behaviour, tokenizer)
    else:
        completion_ids = tokenizer(row["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        behaviour, known = [0.0] * len(completion_ids), [0] * len(completion_ids)
    encoded = {
        "input_ids": prompt_ids + completion_ids,
        "labels": [-100] * len(prompt_ids) + completion_ids,
        "behaviour_logprobs": [0.0] * len(prompt_ids) + behaviour,
        "behaviour_mask": [0] * len(prompt_ids) + known,
    }
    if max_length:
        encoded = {key: value[:max_length] for key, value in encoded.items()}
    encoded["source_code"] = SOURCE_CODES[row["source"]]
    return encoded


def end_with_eos(ids: list[int], behaviour: list[float], tokenizer) -> tuple[list[int], list[float], list[int]]:
    """A sampled completion as the paper trains on it: its text, then the model's EOS (the release appends
    `tokenizer.eos_token` to every response). A sample that stopped on another special token (Qwen2.5-Math's
    <|im_end|> under the chat template; Llama's <|end_of_text|>) ends with EOS instead. Returns the ids, the
    behaviour log-probs and a per-token mask of where they are known: not for an EOS the sampler never drew."""
    eos = tokenizer.eos_token_id
    known = [1] * len(ids)
    if ids and ids[-1] == eos:
        return ids, behaviour, known
    special = {index for index, token in tokenizer.added_tokens_decoder.items() if token.special}
    if ids and ids[-1] in special | set(tokenizer.all_special_ids):
        ids, behaviour, known = ids[:-1], behaviour[:-1], known[:-1]
    return ids + [eos], behaviour + [0.0], known + [0]


@dataclass
class WeightedCollator:
    """Right-pads every per-token column; the pad token is set here, not taken from a model default. The base
    model's log-probs (`base_logprobs`, objective `proximal`) travel like the behaviour log-probs when present."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)

        def pad(key: str, value, dtype) -> torch.Tensor:
            return torch.tensor([list(e[key]) + [value] * (width - len(e[key])) for e in examples], dtype=dtype)

        input_ids = pad("input_ids", self.pad_token_id, torch.long)
        attention = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples])
        batch = {"input_ids": input_ids, "attention_mask": attention, "labels": pad("labels", -100, torch.long),
                 "behaviour_logprobs": pad("behaviour_logprobs", 0.0, torch.float32),
                 "behaviour_mask": pad("behaviour_mask", 0, torch.long),
                 "source_code": torch.tensor([e["source_code"] for e in examples], dtype=torch.long)}
        if BASE_LOGPROBS in examples[0]:
            batch[BASE_LOGPROBS] = pad(BASE_LOGPROBS, 0.0, torch.float32)
        return batch


# --- the trainer ---------------------------------------------------------------------------------------------


def _trainer_class():
    from trl import SFTTrainer

    class WeightedSFTTrainer(SFTTrainer):
        """SFTTrainer whose loss is an objective of mindthegap.objectives (see module doc). `base_model`: the
        frozen initial model, for objectives that need its distribution at every step (asft)."""

        def __init__(self, *args, loss: str = "sft", loss_args: dict[str, Any] | None = None, base_model=None,
                     **kwargs):
            objective = objectives.get(loss)
            if objectives.BASE_MODEL in objective.needs and base_model is None:
                raise ValueError(f"objective {loss!r} needs the frozen base model (base_model=...)")
            self.objective = {"loss": loss, "args": objectives.resolve_args(loss, {}, loss_args)}
            self.base_model = base_model
            super().__init__(*args, **kwargs)

        def _set_signature_columns_if_needed(self):
            if self._signature_columns is None:
                self._signature_columns = ["input_ids", "labels", "behaviour_logprobs", "behaviour_mask",
                                           "source_code", BASE_LOGPROBS]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mode = "train" if self.model.training else "eval"
            if self.base_model is None:
                outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                labels=inputs["labels"], fused_lm_head=True, use_cache=False)
                logp, mask, top1, kl = outputs.log_probs, outputs.label_mask, outputs.is_top1, None
                entropy = outputs.entropy
            else:
                outputs, logp, mask, top1, kl = self._forward_with_base(model, inputs)
                entropy = None
            token_inputs = objectives.TokenInputs(
                logp=logp, behaviour_logp=inputs["behaviour_logprobs"][:, 1:],
                behaviour_known=inputs["behaviour_mask"][:, 1:],
                base_logp=inputs[BASE_LOGPROBS][:, 1:] if BASE_LOGPROBS in inputs else None,
                kl_to_base=kl, entropy=entropy)
            terms = objectives.compute(self.objective["loss"], token_inputs, self.objective["args"])
            loss = reduce_tokens(terms.loss, mask, num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients; N counts every rank
            for key, value in weight_stats(terms.weights, mask, inputs["source_code"]).items():
                self._metrics[mode][key].append(value)
            valid = mask.sum().clamp(min=1)
            for key, value in terms.diagnostics.items():
                self._metrics[mode][key].append(((value * mask).sum() / valid).item())
            self._metrics[mode]["mean_token_accuracy"].append((top1.sum() / valid).item())
            return (loss, outputs) if return_outputs else loss

        def _forward_with_base(self, model, inputs):
            """Full next-token distributions of the model and of the frozen base model at the response positions
            only (the fused LM head gives only the labels' log-probs; prompt and padding positions are dropped
            before the vocabulary-wide softmax): per-token log-probs, mask, top-1 hits and KL(pi_base || pi_theta),
            each (batch, tokens) and zero off the mask."""
            batch = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"], "use_cache": False}
            outputs = model(**batch)
            labels = inputs["labels"][:, 1:]
            mask = labels != -100
            logp_vocab = torch.log_softmax(outputs.logits[:, :-1][mask].float(), -1)  # (response tokens, vocab)
            with torch.no_grad():
                base_logits = self.base_model(**batch).logits[:, :-1][mask]
            kl = objectives.kl_to_base(logp_vocab, torch.log_softmax(base_logits.float(), -1))

            def per_token(values):
                return values.new_zeros(mask.shape).masked_scatter(mask, values)

            logp = per_token(logp_vocab.gather(1, labels[mask][:, None]).squeeze(1))
            top1 = per_token((logp_vocab.argmax(-1) == labels[mask]).float())
            return outputs, logp, mask, top1, per_token(kl)

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if "train_loss" in logs:  # the end-of-training record: the run's loss, not only this call's steps
                logs = {**logs, "train_loss": run_mean_loss(self.state.log_history)}
            super().log(logs, start_time)

    return WeightedSFTTrainer


def run_mean_loss(log_history: list[dict[str, Any]]) -> float:
    """Mean training loss over every step of the run, from the logged windows (a resumed run's log_history starts
    with the checkpoint's): each entry's `loss` is the mean over the steps since the previous entry, so it counts
    that many times. The Trainer's own `training_loss` covers only the steps of the last `train()` call."""
    total, steps, previous = 0.0, 0, 0
    for entry in log_history:
        if "loss" in entry:
            window = entry["step"] - previous
            total, steps, previous = total + entry["loss"] * window, steps + window, entry["step"]
    return total / steps if steps else math.nan


def _checkpoints_close_logging_windows():
    from transformers import TrainerCallback

    class CheckpointsCloseLoggingWindows(TrainerCallback):
        """Logs at every checkpoint and at the last step, so that no logging window spans a checkpoint.

        The logged statistics (loss, token weights) are accumulated in memory between two logs, and only the
        logs already written are in a checkpoint: a window open at a checkpoint would lose its first part when a
        job killed past it resumes. The Trainer logs before it saves in the same step, so a checkpoint holds every
        logged window whole, and a resumed run logs the same windows as an uninterrupted one. Per-rank
        accumulators need not be saved (only rank 0 writes trainer_state.json). Runs after DefaultFlowCallback,
        which sets `should_save`."""

        def on_step_end(self, args, state, control, **kwargs):
            if control.should_save or control.should_training_stop:
                control.should_log = True
            return control

    return CheckpointsCloseLoggingWindows()


def train(dataset_path: str, model: str, output_dir: str, work_dir: str, hparams: dict[str, Any], *,
          revision: str | None = None, callbacks: list | tuple = ()) -> dict[str, Any]:
    """Fine-tune `model` on a rewritten/expert dataset; resume from the last checkpoint in `work_dir`;
    publish the final model (+ tokenizer, training log) into `output_dir`. `callbacks`: extra TrainerCallbacks.

    The published diagnostics (training_log.json) do not depend on whether the job was killed and resumed: the
    log is restored from the checkpoint, no logging window spans a checkpoint, and the summary's train loss is
    recomputed from the whole log (`run_mean_loss`)."""
    import pandas as pd
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig

    from mindthegap.launch import gradient_accumulation

    tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = pd.read_parquet(dataset_path).to_dict("records")
    if not rows:
        raise ValueError(f"{dataset_path}: empty training dataset")
    encoded = Dataset.from_list([encode_row(r, tokenizer, hparams["max_length"]) for r in rows])
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by `accelerate launch`; 1 in a single process
    per_device = hparams["per_device_batch_size"]
    accumulation = gradient_accumulation(hparams["global_batch_size"], per_device, world)
    use_bf16 = bf16_autocast(hparams.get("bf16", False))
    # The base model's copies load before the Trainer's arguments start the process group: FSDP's rank-0-only
    # loading (`fsdp_cpu_ram_efficient_loading`) and ZeRO-3's partitioned init then leave them whole on every rank.
    objective = objectives.get(hparams["loss"])
    base_model = (load_base_model(model, revision, torch.bfloat16 if use_bf16 else MASTER_DTYPE)
                  if objectives.BASE_MODEL in objective.needs else None)
    cache = base_logprobs_cache(Path(work_dir), encoded) if BASE_LOGPROBS in objective.needs else None
    if cache and not cache.exists():  # before the first step; a resumed job reads the cache
        score_share(model, revision, encoded, WeightedCollator(tokenizer.pad_token_id), per_device, use_bf16,
                    Path(work_dir))
    config = SFTConfig(
        output_dir=work_dir, learning_rate=hparams["learning_rate"], num_train_epochs=hparams["epochs"],
        max_steps=hparams.get("max_steps") or -1,
        per_device_train_batch_size=per_device, gradient_accumulation_steps=accumulation,
        lr_scheduler_type=hparams["lr_scheduler"], warmup_steps=hparams["warmup_ratio"],
        weight_decay=hparams["weight_decay"], adam_beta1=hparams["adam_beta1"], adam_beta2=hparams["adam_beta2"],
        max_grad_norm=hparams["max_grad_norm"], bf16=use_bf16, seed=hparams["seed"], data_seed=hparams["seed"],
        save_steps=hparams["save_steps"], save_total_limit=hparams.get("save_total_limit", 2),
        logging_steps=hparams.get("logging_steps", 10), report_to="none", remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True}, max_length=hparams["max_length"], packing=False,
        gradient_checkpointing=hparams.get("gradient_checkpointing", False), use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, disable_tqdm=hparams.get("disable_tqdm", False),
    )
    # fp32 master weights whatever the checkpoint's dtype (transformers' default "auto" would keep a bf16 one bf16)
    network = AutoModelForCausalLM.from_pretrained(model, revision=revision, dtype=MASTER_DTYPE)
    check = _master_weights_check()
    trainer = _trainer_class()(
        model=network, args=config, train_dataset=encoded, processing_class=tokenizer,
        data_collator=WeightedCollator(tokenizer.pad_token_id), loss=hparams["loss"],
        loss_args=objectives.resolve_args(hparams["loss"], hparams, hparams.get("loss_args")), base_model=base_model,
        callbacks=[check, _checkpoints_close_logging_windows(), *callbacks],
    )
    if BASE_LOGPROBS in objective.needs:
        trainer.train_dataset = encoded.add_column(BASE_LOGPROBS, merged_base_logprobs(cache, trainer))
    last = get_last_checkpoint(work_dir) if Path(work_dir).is_dir() else None
    if last:
        log.info("resuming training from %s", last)
    trainer.train(resume_from_checkpoint=last)
    summary = {"train_loss": run_mean_loss(trainer.state.log_history), "global_steps": trainer.state.global_step,
               "resumed_from": last, "gradient_accumulation_steps": accumulation, "world_size": world,
               "rows": len(rows), "mixed_precision": "bf16" if use_bf16 else "no", "master_weights": check.dtypes}
    publish(trainer, tokenizer, output_dir, summary)
    return summary


def local_device() -> torch.device:
    """This process's device before the Trainer sets it up: its GPU (`LOCAL_RANK` under `accelerate launch`)."""
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device(
        "cpu")


def load_base_model(model: str, revision: str | None, dtype: torch.dtype):
    """A frozen copy of the initial model on this process's device: eval mode, no gradient. For asft it runs
    forward at every step in bf16 weights when training computes in bf16 (under the same autocast), fp32 otherwise:
    one whole copy per GPU, also under FSDP/DeepSpeed (README "Objectives": its cost)."""
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model, revision=revision, dtype=dtype)
    return base.eval().requires_grad_(False).to(local_device())


def score_base_logprobs(model, examples: list[dict[str, Any]], collator, batch_size: int, bf16: bool
                        ) -> list[list[float]]:
    """`model`'s log-prob of every label of `examples` (encoded rows), no gradient, under the training's autocast:
    one list per row aligned with its input_ids like `behaviour_logprobs` (0.0 at position 0 and prompt positions).
    Only the labels' log-probs are computed (TRL's fused LM head), never the full-vocabulary logits."""
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(model)
    device = next(model.parameters()).device
    scores = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            batch = {key: value.to(device) for key, value in collator(chunk).items()}
            outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            labels=batch["labels"], fused_lm_head=True, use_cache=False)
            for row, example in zip(outputs.log_probs.float().cpu(), chunk):
                scores.append([0.0, *row[:len(example["input_ids"]) - 1].tolist()])
    return scores


def score_share(model: str, revision: str | None, encoded, collator, batch_size: int, bf16: bool, work_dir: Path
                ) -> None:
    """This process's share of the base model's scores (rows rank::world), with a fresh copy of the initial model
    in the training's precision (fp32 weights, bf16 autocast when asked), into a part file of `work_dir`."""
    import pandas as pd

    from mindthegap.io import write_parquet

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    mine = list(range(rank, len(encoded), world))
    scorer = load_base_model(model, revision, MASTER_DTYPE)
    scores = score_base_logprobs(scorer, [encoded[i] for i in mine], collator, batch_size, bf16)
    del scorer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    write_parquet(pd.DataFrame({"index": mine, BASE_LOGPROBS: scores}), _part(work_dir, rank, world))
    log.info("scored the base model's log-probs of %d rows (share %d of %d)", len(mine), rank, world)


def merged_base_logprobs(cache: Path, trainer) -> list[list[float]]:
    """The base model's per-token log-probs of every training row, from `cache` (in the job's work dir, named by a
    fingerprint of the encoded rows: other rows are scored anew). When absent, every process has just written its
    share (`score_share`): process zero merges them into `cache` once all have. A resumed job reads `cache`."""
    import pandas as pd

    from mindthegap.io import read_parquet, write_parquet

    if not cache.exists():
        world = trainer.args.world_size
        trainer.accelerator.wait_for_everyone()
        if trainer.args.process_index == 0:
            parts = [_part(cache.parent, rank, world) for rank in range(world)]
            write_parquet(pd.concat(map(read_parquet, parts)).sort_values("index")[[BASE_LOGPROBS]], cache)
            for path in parts:
                path.unlink()
        trainer.accelerator.wait_for_everyone()
    log.info("base model log-probs from %s", cache)
    return [list(map(float, row)) for row in read_parquet(cache)[BASE_LOGPROBS]]


def _part(work_dir: Path, rank: int, world: int) -> Path:
    return work_dir / f"base_logprobs.part-{rank}-of-{world}.parquet"


def base_logprobs_cache(work_dir: Path, encoded) -> Path:
    """Where the base model's scores of these rows live: named by a hash of their token ids, row by row."""
    import hashlib

    digest = hashlib.sha256()
    for ids in encoded["input_ids"]:
        digest.update(b",".join(str(i).encode() for i in ids) + b";")
    return work_dir / f"base_logprobs-{digest.hexdigest()[:16]}.parquet"


def optimizer_dtypes(optimizer) -> list[str]:
    """dtypes of the tensors the optimizer updates (under DeepSpeed: its fp32 partitions, not the bf16 module)."""
    return sorted({str(p.dtype) for group in optimizer.param_groups for p in group["params"]})


def _master_weights_check():
    from transformers import TrainerCallback

    class MasterWeightsCheck(TrainerCallback):
        """Fails at the first step, not after a day of training, if the optimizer would update non-fp32 weights."""

        dtypes: list[str] = []

        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            self.dtypes = optimizer_dtypes(optimizer)
            if self.dtypes == [str(MASTER_DTYPE)]:
                return
            message = (f"the optimizer updates {self.dtypes} weights; expected {MASTER_DTYPE} master weights (bf16 "
                       "belongs in autocast, not in the loaded model)")
            if args.deepspeed_plugin is not None:  # ZeRO owns its fp32 partitions; what it shows may differ by version
                log.warning("%s (under DeepSpeed: reported, not enforced)", message)
                return
            raise RuntimeError(message)

    return MasterWeightsCheck()


def publish(trainer, tokenizer, output_dir: str | Path, summary: dict[str, Any]) -> None:
    """Write the final model, tokenizer and training log into `output_dir`, once for the whole job.

    Every process calls `save_model` (under FSDP and ZeRO-3 gathering the full weights is collective; the Trainer
    writes on the main process only); the tokenizer and the log are written by the world's process zero alone, so
    processes never race on the same files.
    """
    from mindthegap.io import apply_umask, write_json

    trainer.model.config.use_cache = True  # training turns the KV cache off; generation from this model wants it
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
        write_json({"summary": summary, "log_history": trainer.state.log_history},
                   Path(output_dir) / "training_log.json")
        apply_umask(output_dir)  # safetensors writes the weights 0600: colleagues must be able to read the model
