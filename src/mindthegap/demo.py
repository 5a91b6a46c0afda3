"""The embedded default: a synthetic arithmetic task with boxed answers and a tiny model built locally.

A miniature of the paper's mechanism. Two policies write solutions to the same problems:
  * the base model's own policy (what pre-training teaches it): terse equations split into tens and ones,
    "12 + 34 = 10 + 30 + 2 + 4 = 40 + 6 = 46.";
  * the expert's policy (the training set's demonstrations): a different solution path, the column method in
    words ("Add the ones: 2 plus 4 makes 6. ..."), which the base model never produces.
So the expert demonstrations are off-policy: every one of their tokens is unlikely under the base model (it sees
that style only inside hint prompts, never as its own output), while its own correct samples are likely. SFT on
them pushes the model toward an algorithm it cannot run (carries in words): the forgetting the paper is about.

Four levels of difficulty give the rewrite cascade something to do with a model of ~0.5M parameters:
  1. two-digit sums without a carry -- pre-trained plainly: mostly solved            (source "self")
  2. two-digit sums with a carry    -- pre-trained plainly: partly solved             (mostly "self")
  3. two-digit products             -- seen in pre-training only as "retell the        (source "guided")
                                       expert's solution shown as a reference in your
                                       own words": it cannot multiply
  4. four-term sums                 -- long, never seen: retelling fails              (source "expert")
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
LEVEL_NAMES = {1: "sums, no carry", 2: "sums with a carry", 3: "products", 4: "four-term sums"}
STYLES = ("own", "expert")
# Pre-training's share of level 1, and of levels 1-2 (the rest: level 3 retold from a reference): the base model
# must solve levels 1-2 often and level 3 from the hint, so that all three sources occur. Measured
# (benchmarks/miniature): (0.35, 0.6) solves 38 % / 13 % of level 1 / 2 samples; (0.45, 0.8) 67 % / 48 %, and
# 37 % of level-3 samples from the hint.
PRETRAINING_MIX = (0.45, 0.8)
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _operands(level: int, rng: random.Random) -> tuple[str, list[int]]:
    """(operator, operands) of a random problem of one level."""
    if level in (1, 2):  # two-digit sums, level 1 without a carry from the ones, level 2 with one
        while True:
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            if (a % 10 + b % 10 >= 10) == (level == 2):
                return "+", [a, b]
    if level == 3:
        return "*", [rng.randint(11, 99), rng.randint(2, 9)]
    if level == 4:
        return "+", [rng.randint(10, 99) for _ in range(4)]
    raise ValueError(f"unknown demo level {level}; valid: {LEVELS}")


def own_steps(op: str, terms: list[int]) -> str:
    """The base model's style: terse equations; sums and products of two numbers split into tens and ones (each
    step one digit fact, which a tiny model learns quickly), longer sums left to right."""
    if op == "*":
        (a, b), tens, ones = terms, terms[0] // 10 * 10, terms[0] % 10
        return f"{a} * {b} = {tens} * {b} + {ones} * {b} = {tens * b} + {ones * b} = {a * b}."
    if len(terms) == 2:
        (a, b), tens, ones = terms, terms[0] // 10 * 10 + terms[1] // 10 * 10, terms[0] % 10 + terms[1] % 10
        return f"{a} + {b} = {a // 10 * 10} + {b // 10 * 10} + {a % 10} + {b % 10} = {tens} + {ones} = {a + b}."
    running, parts = terms[0], []
    for term in terms[1:]:
        parts.append(f"{running} + {term} = {running + term}.")
        running += term
    return " ".join(parts)


def expert_steps(op: str, terms: list[int]) -> str:
    """The expert's style, a different solution path: sums of two numbers by the column method (ones, carry,
    tens) in words, products and longer sums in words."""
    if op == "*":
        (a, b), tens, ones = terms, terms[0] // 10 * 10, terms[0] % 10
        return (f"Multiply the tens: {tens} times {b} makes {tens * b}. Multiply the ones: {ones} times {b} makes "
                f"{ones * b}. Add them: {tens * b} plus {ones * b} makes {a * b}.")
    if len(terms) == 2:
        (a, b), ones = terms, terms[0] % 10 + terms[1] % 10
        text = f"Add the ones: {a % 10} plus {b % 10} makes {ones}"
        tens = a // 10 + b // 10 + ones // 10
        if ones >= 10:  # a carry
            text, carried = f"{text}, write {ones % 10} and carry 1", " plus 1"
        else:
            carried = ""
        return f"{text}. Add the tens: {a // 10} plus {b // 10}{carried} makes {tens}."
    running, parts = terms[0], [f"Start with {terms[0]}."]
    for term in terms[1:]:
        running += term
        parts.append(f"Add {term} to get {running}.")
    return " ".join(parts)


def _answer(op: str, terms: list[int]) -> int:
    return terms[0] * terms[1] if op == "*" else sum(terms)


def _problem_text(op: str, terms: list[int]) -> str:
    return "What is " + f" {op} ".join(map(str, terms)) + "?"


def solution(op: str, terms: list[int], style: str) -> str:
    """A whole solution in one style, ending with the boxed answer (each style closes in its own words)."""
    answer = _answer(op, terms)
    if style == "own":
        return f"{own_steps(op, terms)}\nThe answer is \\boxed{{{answer}}}."
    if style == "expert":
        return f"{expert_steps(op, terms)}\nSo the result is \\boxed{{{answer}}}."
    raise ValueError(f"unknown solution style {style!r}; valid: {', '.join(STYLES)}")


def make_problem(level: int, rng: random.Random) -> tuple[str, str, str]:
    """(problem, the expert's solution, answer) of one level: a row of the training set or the benchmark."""
    op, terms = _operands(level, rng)
    return _problem_text(op, terms), solution(op, terms, "expert"), str(_answer(op, terms))


def parse_problem(problem: str) -> tuple[str, list[int]]:
    """(operator, operands) back from a problem's text."""
    body = problem.removeprefix("What is ").removesuffix("?")
    op = "*" if " * " in body else "+"
    return op, [int(term) for term in body.split(f" {op} ")]


def level_of(problem: str) -> int:
    """The level of a problem, from its text (benchmark files keep only the problems contract's columns)."""
    op, terms = parse_problem(problem)
    if op == "*":
        return 3
    if len(terms) == 4:
        return 4
    return 2 if terms[0] % 10 + terms[1] % 10 >= 10 else 1


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
    rng, rows, seen, draws = random.Random(seed), [], set(), 0
    while len(rows) < n:
        draws += 1
        if draws > 1000 * n:
            raise ValueError(f"cannot draw {n} distinct {split} problems of levels {levels}: too few exist")
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


def pretraining_corpus(n: int, seed: int, guided_template: str,
                       mix: tuple[float, float] = PRETRAINING_MIX) -> list[tuple[str, str]]:
    """(user message, response) pairs, every response in the model's own style: plain solutions of levels 1-2,
    and on level 3 the expert's solution shown as a reference and retold in the own style.

    The expert's style appears only inside prompts (which carry no loss), never as a response: that makes the
    expert's demonstrations off-policy for the base model. Drawn from the whole problem space, test split
    included: this is the base model's prior knowledge, as a hub model's pre-training is; the fine-tuning
    problems and the benchmark never overlap (`_split_of`).
    """
    rng, pairs = random.Random(seed), []
    while len(pairs) < n:
        roll = rng.random()
        level = 1 if roll < mix[0] else 2 if roll < mix[1] else 3
        op, terms = _operands(level, rng)
        problem, own = _problem_text(op, terms), solution(op, terms, "own")
        if level == 3:  # learn to retell a reference, never to multiply
            reference = solution(op, terms, "expert")
            pairs.append((guided_template.format(problem=problem, solution=reference), own))
        else:
            pairs.append((problem, own))
    return pairs


def build_model(output_dir: str | Path, *, seed: int, steps: int, batch_size: int, lr: float,
                hidden_size: int, layers: int, corpus_size: int, guided_template: str,
                mix: tuple[float, float] = PRETRAINING_MIX) -> dict[str, float]:
    """Train the tokenizer and a tiny Qwen2 model from scratch; save both in HF format to `output_dir`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    pairs = pretraining_corpus(corpus_size, seed, guided_template, mix)
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
