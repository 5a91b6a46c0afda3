"""The embedded default: a synthetic arithmetic task with boxed answers and a tiny model built locally.

Four levels of difficulty give the rewrite cascade something to do with a model of ~1M parameters:
  1. one-digit sums       -- pre-trained plainly: the model solves them itself      (source "self")
  2. two-digit sums       -- pre-trained plainly, less often: partly solved
  3. two-digit products   -- seen in pre-training only as "copy the reference"     (source "guided")
  4. four-term sums       -- long, never seen: copying often fails                 (source "expert")
Nothing is downloaded: the tokenizer is trained with `tokenizers`, the model is a random Qwen2 config.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path
from typing import Any

from mindthegap.io import apply_umask

log = logging.getLogger(__name__)

LEVELS = (1, 2, 3, 4)
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def make_problem(level: int, rng: random.Random) -> tuple[str, str, str]:
    """(problem, expert solution, answer) of one level."""
    if level == 1:
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        steps, answer = f"{a} + {b} = {a + b}.", a + b
        problem = f"What is {a} + {b}?"
    elif level == 2:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        steps, answer = f"{a} + {b} = {a + b}.", a + b
        problem = f"What is {a} + {b}?"
    elif level == 3:
        a, b = rng.randint(11, 99), rng.randint(2, 9)
        tens, ones = (a // 10) * 10, a % 10
        steps = f"{a} * {b} = {tens} * {b} + {ones} * {b} = {tens * b} + {ones * b} = {a * b}."
        answer, problem = a * b, f"What is {a} * {b}?"
    elif level == 4:
        terms = [rng.randint(10, 99) for _ in range(4)]
        running, parts = terms[0], []
        for term in terms[1:]:
            parts.append(f"{running} + {term} = {running + term}.")
            running += term
        steps, answer = " ".join(parts), running
        problem = "What is " + " + ".join(map(str, terms)) + "?"
    else:
        raise ValueError(f"unknown demo level {level}; valid: {LEVELS}")
    return problem, f"{steps}\nThe answer is \\boxed{{{answer}}}.", str(answer)


def _split_of(problem: str) -> str:
    """A fixed hash split: train and test never share a problem."""
    return "test" if hashlib.sha256(problem.encode()).digest()[0] % 5 == 0 else "train"


def generate_problems(task: str, n: int, seed: int, split: str = "train",
                      levels: tuple[int, ...] = LEVELS) -> list[dict[str, Any]]:
    """n distinct problems of `split`, levels in turn; rows in the problems contract (plus `level`)."""
    if task != "arith":
        raise ValueError(f"unknown synthetic task {task!r}; valid: 'arith'")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: 'train', 'test'")
    rng, rows, seen = random.Random(seed), [], set()
    while len(rows) < n:
        level = levels[len(rows) % len(levels)]
        problem, solution, answer = make_problem(level, rng)
        if problem in seen or _split_of(problem) != split:
            continue
        seen.add(problem)
        rows.append({"id": f"{split}-{len(rows):05d}", "problem": problem, "solution": solution,
                     "answer": answer, "level": level})
    return rows


# --- the tiny model -------------------------------------------------------------------------------


def build_tokenizer(corpus: list[str]):
    """A byte-level BPE tokenizer trained on the corpus, digits kept one per token, with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def pretraining_corpus(n: int, seed: int, guided_template: str) -> list[tuple[str, str]]:
    """(user message, response) pairs: plain solutions of levels 1-2, reference copying on level 3.

    Drawn from the whole problem space, test split included: this is the base model's prior knowledge, as a
    hub model's pre-training is; the fine-tuning problems and the benchmark never overlap (`_split_of`).
    """
    rng, pairs = random.Random(seed), []
    while len(pairs) < n:
        roll = rng.random()
        level = 1 if roll < 0.35 else 2 if roll < 0.6 else 3
        problem, solution, _ = make_problem(level, rng)
        if level == 3:  # learn to use a reference, never to multiply
            pairs.append((guided_template.format(problem=problem, solution=solution), solution))
        else:
            pairs.append((problem, solution))
    return pairs


def build_model(output_dir: str | Path, *, seed: int, steps: int, batch_size: int, lr: float,
                hidden_size: int, layers: int, corpus_size: int, guided_template: str) -> dict[str, float]:
    """Train the tokenizer and a tiny Qwen2 model from scratch; save both in HF format to `output_dir`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    pairs = pretraining_corpus(corpus_size, seed, guided_template)
    tokenizer = build_tokenizer([text for pair in pairs for text in pair])
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    examples = [_encode(tokenizer, user, response) for user, response in pairs]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = random.Random(seed)
    model.train()
    for step in range(1, steps + 1):
        input_ids, labels = _batch(rng.sample(examples, batch_size), tokenizer.pad_token_id)
        loss = model(input_ids=input_ids, attention_mask=(input_ids != tokenizer.pad_token_id).long(),
                     labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == steps:
            log.info("pretrain step %d/%d loss %.4f", step, steps, loss.item())
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    apply_umask(output_dir)  # safetensors writes the weights 0600
    return {"final_loss": float(loss.item()), "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer)}


def _encode(tokenizer, user: str, response: str) -> tuple[list[int], int]:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                           add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids + response_ids, len(prompt_ids)


def _batch(examples: list[tuple[list[int], int]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, (ids, prompt_len) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, prompt_len: len(ids)] = torch.tensor(ids[prompt_len:])
    return input_ids, labels
