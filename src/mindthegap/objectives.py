"""One registry of token-weighted SFT objectives, each a pure function of per-token tensors.

Every objective maps the per-token inputs of a batch (`TokenInputs`: all tensors (batch, tokens), aligned with the
labels shifted by one) to `Terms`: detached per-token weights (the weight statistics the trainer logs, per source)
and the differentiable per-token loss the trainer reduces as `L = sum_t m_t * loss_t / N` (m_t the response-token
mask, N the response tokens of the batch, TRL's `num_items_in_batch`). For the pure re-weightings
`loss_t = w_t * (-log p_theta(y_t))`; PSFT's clipped surrogate and ASFT's KL anchor are not of that form, so the
loss is returned separately from the weights. sg = stop-gradient.

  sft       -log p                                                    -
  dft       -sg(p) log p                                              arXiv 2508.05629 (DFT)
  is        -min(c, sg(p)/p_b) log p  (no p_b: DFT's or SFT's weight)  ours; needs the behaviour log-probs
  power     -sg(p)^alpha log p  (alpha 0 = SFT, alpha 1 = DFT)        arXiv 2510.00526
  asft      -sg(p) log p + beta KL(pi_base(.|s_t) || pi_theta(.|s_t))  arXiv 2509.23753; needs the base model
  proximal  -min(r, clip(r, 1-eps_low, 1+eps_high)),  r = p / p_base  arXiv 2508.17784; needs the base log-probs

Costs (README "Objectives"): CPU time of a training micro-step against DFT, measured with a demo-sized model:
sft 0.98-0.99, is 0.97, power 0.99-1.01, proximal 0.99-1.01 (plus one no-grad scoring pass over the data set
before the first step, cached in the job's work dir), asft 1.21-1.23. `asft` holds a frozen copy of the base model, runs it forward at every step and
materialises both models' full-vocabulary log-probs at the response positions. At 7B on the config's layout (8 GPUs,
FSDP, micro-batch 4 x 2048, gradient checkpointing), estimated: +15 GB of bf16 weights per GPU (unsharded; ~2 GB
were it sharded by FSDP), ~5 GB per fp32 (tokens x 152k vocabulary) copy of the log-probs, and one extra forward per
step, ~+1/4 of a step's compute (+1/3 without checkpointing); proximal's scoring pass ~+1/4 of a one-epoch run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

# the inputs an objective may ask for beyond the current log-probs
BEHAVIOUR = "behaviour_logprobs"  # stored at sampling (self/guided rows); unknown on expert rows
BASE_LOGPROBS = "base_logprobs"  # the initial model's log-prob of each label, scored once before training
BASE_MODEL = "base_model"  # the frozen initial model's full next-token distribution, at every step
ENTROPY = "entropy"  # the current next-token distribution's entropy (the fused LM head computes it)


@dataclass
class TokenInputs:
    """Per-token tensors of one batch, shape (batch, tokens). `logp` carries the gradient; the rest are data."""

    logp: torch.Tensor
    behaviour_logp: torch.Tensor | None = None
    behaviour_known: torch.Tensor | None = None
    base_logp: torch.Tensor | None = None
    kl_to_base: torch.Tensor | None = None  # KL(pi_base || pi_theta) per token, with gradient (see `kl_to_base`)
    entropy: torch.Tensor | None = None


@dataclass
class Terms:
    """`weights`: detached, what the trainer logs per source; `loss`: per token, differentiable; `diagnostics`:
    further per-token quantities the trainer logs as masked means (e.g. the KL anchor, the clipped fraction)."""

    weights: torch.Tensor
    loss: torch.Tensor
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Objective:
    name: str
    function: Callable[..., Terms]
    needs: tuple[str, ...]  # extra inputs (the constants above)
    defaults: dict[str, Any]  # hyper-parameters and their defaults
    formula: str
    source: str


def _weighted(logp: torch.Tensor, weights: torch.Tensor) -> Terms:
    return Terms(weights=weights, loss=weights * -logp)


def sft(x: TokenInputs) -> Terms:
    """Plain SFT: w_t = 1, loss_t = -log p_theta(y_t)."""
    return _weighted(x.logp, torch.ones_like(x.logp))


def dft(x: TokenInputs) -> Terms:
    """Dynamic Fine-Tuning (Wu et al., arXiv 2508.05629): w_t = sg(p_theta(y_t)). The paper under reproduction
    (arXiv 2509.15157) trains with it; TRL's `loss_type="dft"` is the same loss."""
    return _weighted(x.logp, x.logp.detach().exp())


def power(x: TokenInputs, alpha: float = 0.5) -> Terms:
    """The power family of "Beyond Log Likelihood" (arXiv 2510.00526): the objective (1 - p^alpha)/alpha, whose
    gradient is -p^alpha grad log p, i.e. the NLL weighted by w_t = sg(p_theta(y_t))^alpha. alpha = 0 is SFT
    (-log p in the limit), alpha = 1 is DFT (1 - p); in between it interpolates between learning every token and
    learning only the tokens the model already finds likely."""
    return _weighted(x.logp, x.logp.detach().exp() ** alpha)


def importance_sampling(x: TokenInputs, clip: float = 2.0, expert_weight: str = "dft") -> Terms:
    """Ours (with the paper's off-policy view, arXiv 2509.15157): w_t = min(c, exp(sg(log p_theta) - log p_b)) with
    p_b the behaviour policy stored at sampling; c = 0 turns the clip off. Tokens whose p_b is unknown (expert rows,
    an appended EOS) take the `expert_weight` objective's weight ("dft" or "sft")."""
    logp = x.logp.detach()
    log_ratio = logp - x.behaviour_logp
    ratio = torch.exp(torch.clamp(log_ratio, max=math.log(clip))) if clip else torch.exp(log_ratio)
    fallback = {"dft": dft, "sft": sft}[expert_weight](x).weights
    return _weighted(x.logp, torch.where(x.behaviour_known.bool(), ratio, fallback))


def proximal(x: TokenInputs, clip_low: float = 0.2, clip_high: float = 0.28) -> Terms:
    """Proximal SFT (Zhu et al., arXiv 2508.17784): PPO's clipped surrogate with a constant advantage A = 1,
    loss_t = -min(r_t, clip(r_t, 1 - clip_low, 1 + clip_high)), r_t = p_theta(y_t) / p_old(y_t). With A > 0 only the
    upper clip binds: its gradient is the NLL's weighted by sg(r_t) where r_t <= 1 + clip_high and zero above, so a
    token stops being pushed up once its probability has risen by the trust region. The defaults are the released
    run script's (clip_ratio_low 0.2, clip_ratio_high 0.28). Here p_old is the base model, scored once before
    training (the release refreshes it at every rollout batch of its verl loop; the issue fixes it to the base
    policy, a trust region around the initial model for the whole run)."""
    log_ratio = x.logp - x.base_logp
    ratio = torch.exp(torch.clamp(log_ratio, max=20.0))  # a guard against overflow, as verl's
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    loss = -torch.minimum(ratio, clipped)
    above = (ratio.detach() > 1 + clip_high).float()
    weights = ratio.detach() * (1 - above)
    return Terms(weights=weights, loss=loss, diagnostics={"clipped_fraction": above})


def asft(x: TokenInputs, beta: float = 0.1) -> Terms:
    """Anchored SFT (Zhu et al., arXiv 2509.23753): DFT plus a KL anchor to the frozen base model,
    loss_t = -sg(p_theta(y_t)) log p_theta(y_t) + beta * KL(pi_base(.|s_t) || pi_theta(.|s_t)), the KL over the full
    vocabulary at every response position, averaged over the response tokens like the DFT term. The direction is
    the one of the authors' release (`F.kl_div(log_softmax(policy), softmax(base))`, also LLaMA-Factory's
    `asft_loss_func`); beta's default 0.1 is the release's `kl_weight`. The per-token KL comes from `kl_to_base`."""
    terms = dft(x)
    return Terms(weights=terms.weights, loss=terms.loss + beta * x.kl_to_base,
                 diagnostics={"kl_to_base": x.kl_to_base.detach()})


def kl_to_base(logp_vocab: torch.Tensor, base_logp_vocab: torch.Tensor) -> torch.Tensor:
    """KL(pi_base || pi_theta) per position: sum_v q_v (log q_v - log p_v) over the last (vocabulary) axis;
    the gradient flows into `logp_vocab` only."""
    dtype = torch.promote_types(logp_vocab.dtype, torch.float32)  # bf16 autocast outputs are summed in fp32
    base = base_logp_vocab.detach().to(dtype)
    return (base.exp() * (base - logp_vocab.to(dtype))).sum(-1)


REGISTRY: dict[str, Objective] = {o.name: o for o in (
    Objective("sft", sft, (), {}, "-log p", "-"),
    Objective("dft", dft, (), {}, "-sg(p) log p", "arXiv 2508.05629"),
    Objective("is", importance_sampling, (BEHAVIOUR,), {"clip": 2.0, "expert_weight": "dft"},
              "-min(c, sg(p)/p_b) log p; expert tokens: DFT (or SFT) weight", "ours (arXiv 2509.15157 setting)"),
    Objective("power", power, (), {"alpha": 0.5}, "-sg(p)^alpha log p", "arXiv 2510.00526"),
    Objective("asft", asft, (BASE_MODEL,), {"beta": 0.1}, "-sg(p) log p + beta KL(pi_base || pi_theta)",
              "arXiv 2509.23753"),
    Objective("proximal", proximal, (BASE_LOGPROBS,), {"clip_low": 0.2, "clip_high": 0.28},
              "-min(r, clip(r, 1-eps_low, 1+eps_high)), r = p/p_base", "arXiv 2508.17784"),
)}
# shared `training` keys that were the IS objective's hyper-parameters before the registry (kept: configs use them)
LEGACY_TRAINING_KEYS = {"is": {"is_clip": "clip", "is_expert_weight": "expert_weight"}}


def get(name: str) -> Objective:
    if name not in REGISTRY:
        raise ValueError(f"unknown objective {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def resolve_args(name: str, training: dict[str, Any], loss_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The objective's hyper-parameters: its defaults, then the legacy shared `training` keys (IS's `is_clip`,
    `is_expert_weight`), then the method's own `loss_args`. Unknown arguments are an error naming the valid ones."""
    objective = get(name)
    args = dict(objective.defaults)
    for key, arg in LEGACY_TRAINING_KEYS.get(name, {}).items():
        if key in training:
            args[arg] = training[key]
    for key, value in (loss_args or {}).items():
        if key not in objective.defaults:
            valid = ", ".join(objective.defaults) or "none"
            raise ValueError(f"objective {name!r} has no argument {key!r}; valid: {valid}")
        args[key] = value
    return args


def compute(name: str, inputs: TokenInputs, args: dict[str, Any] | None = None) -> Terms:
    """Apply objective `name` with hyper-parameters `args` (defaults for those absent)."""
    objective = get(name)
    missing = [need for need, value in ((BEHAVIOUR, inputs.behaviour_logp), (BASE_LOGPROBS, inputs.base_logp),
                                        (BASE_MODEL, inputs.kl_to_base), (ENTROPY, inputs.entropy))
               if need in objective.needs and value is None]
    if missing:
        raise ValueError(f"objective {name!r} needs {', '.join(missing)}, which the batch lacks")
    return objective.function(inputs, **{**objective.defaults, **(args or {})})


def table() -> list[dict[str, str]]:
    """The registry as rows (name, formula, source, extra inputs, defaults): the README's table."""
    return [{"name": o.name, "formula": o.formula, "source": o.source, "extra inputs": ", ".join(o.needs) or "-",
             "defaults": ", ".join(f"{k}={v}" for k, v in o.defaults.items()) or "-"} for o in REGISTRY.values()]
