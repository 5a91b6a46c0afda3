"""The objectives of the registry against independent per-token computations (plain Python floats and loops), on
batches where each objective's clip or anchor binds; gradients of the non-reweighting objectives (proximal, asft)
against finite differences; and a short real TRL run of each objective added beyond the paper."""

import json
import math
import random

import pandas as pd
import pytest
import torch
import yaml
from transformers import AutoTokenizer

from helpers import ROOT
from mindthegap import objectives, training
from mindthegap.io import write_parquet

from test_training import HPARAMS, _rows

B, T, V = 2, 6, 5
MASK = [[0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]  # a prompt position and a pad position in row 0


def _batch(seed=0):
    """Random logits (float64), labels, and their log-probs as plain nested lists (the reference's inputs)."""
    rng = random.Random(seed)
    logits = [[[rng.gauss(0, 2) for _ in range(V)] for _ in range(T)] for _ in range(B)]
    labels = [[rng.randrange(V) for _ in range(T)] for _ in range(B)]
    return logits, labels


def _log_softmax(row):
    top = max(row)
    norm = top + math.log(sum(math.exp(x - top) for x in row))
    return [x - norm for x in row]


def _ref_logp(logits, labels):
    return [[_log_softmax(logits[b][t])[labels[b][t]] for t in range(T)] for b in range(B)]


def _torch_logp(logits, labels):
    logits = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    logp = torch.log_softmax(logits, -1).gather(2, torch.tensor(labels)[..., None]).squeeze(2)
    return logits, logp


def _reduce_ref(per_token):
    n = sum(map(sum, MASK))
    return sum(per_token[b][t] * MASK[b][t] for b in range(B) for t in range(T)) / n


def _flat(nested):
    """A (batch, tokens) tensor or nested list as one flat list of floats (pytest.approx compares flat ones)."""
    nested = nested.tolist() if torch.is_tensor(nested) else nested
    return [float(value) for row in nested for value in row]


def _mask():
    return torch.tensor(MASK, dtype=torch.float64)


def _finite_difference(loss_of_logits, logits, eps=1e-6):
    """d loss / d logits by central differences, one coordinate at a time (float64)."""
    grad = torch.zeros_like(logits)
    flat = logits.detach().clone().view(-1)
    for i in range(flat.numel()):
        up, down = flat.clone(), flat.clone()
        up[i] += eps
        down[i] -= eps
        grad.view(-1)[i] = (loss_of_logits(up.view_as(logits)) - loss_of_logits(down.view_as(logits))) / (2 * eps)
    return grad


# --- the weighting objectives ---------------------------------------------------------------------------------


def test_sft_dft_power_weights_equal_plain_python():
    logits, labels = _batch()
    ref_logp = _ref_logp(logits, labels)
    _, logp = _torch_logp(logits, labels)
    x = objectives.TokenInputs(logp=logp)
    for name, args, weight in [("sft", {}, lambda p: 1.0), ("dft", {}, lambda p: p),
                               ("power", {"alpha": 0.5}, lambda p: math.sqrt(p)),
                               ("power", {"alpha": 0.0}, lambda p: 1.0), ("power", {"alpha": 1.0}, lambda p: p)]:
        terms = objectives.compute(name, x, args)
        expected = [[weight(math.exp(lp)) for lp in row] for row in ref_logp]
        assert _flat(terms.weights) == pytest.approx(_flat(expected), rel=1e-12), (name, args)
        assert not terms.weights.requires_grad
        loss = training.reduce_tokens(terms.loss, _mask(), None).item()
        assert loss == pytest.approx(_reduce_ref([[-w * lp for w, lp in zip(ws, lps)]
                                                  for ws, lps in zip(expected, ref_logp)]), rel=1e-12)


def test_power_ends_are_sft_and_dft_including_the_gradient():
    logits, labels = _batch(1)
    grads = {}
    for name, args in [("sft", {}), ("dft", {}), ("power0", {"alpha": 0.0}), ("power1", {"alpha": 1.0})]:
        tensor, logp = _torch_logp(logits, labels)
        terms = objectives.compute(name.rstrip("01") if name.startswith("power") else name,
                                   objectives.TokenInputs(logp=logp), args)
        training.reduce_tokens(terms.loss, _mask(), None).backward()
        grads[name] = tensor.grad
    assert torch.allclose(grads["power0"], grads["sft"]) and torch.allclose(grads["power1"], grads["dft"])
    assert not torch.allclose(grads["sft"], grads["dft"])


def test_is_clip_binds_on_some_tokens_and_not_others():
    """Behaviour log-probs close to the model's (within ±1 nat): the ratio crosses the clip c = 1.5 both ways."""
    logits, labels = _batch(2)
    rng = random.Random(3)
    ref_logp = _ref_logp(logits, labels)
    behaviour = [[lp + rng.uniform(-1, 1) for lp in row] for row in ref_logp]
    known = [[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]]  # row 1 ends like an expert row: no behaviour policy
    clip = 1.5
    _, logp = _torch_logp(logits, labels)
    x = objectives.TokenInputs(logp=logp, behaviour_logp=torch.tensor(behaviour, dtype=torch.float64),
                               behaviour_known=torch.tensor(known))
    for fallback in ("dft", "sft"):
        weights = objectives.compute("is", x, {"clip": clip, "expert_weight": fallback}).weights.tolist()
        clipped = unclipped = 0
        for b in range(B):
            for t in range(T):
                if known[b][t]:
                    ratio = math.exp(ref_logp[b][t] - behaviour[b][t])
                    clipped, unclipped = clipped + (ratio > clip), unclipped + (ratio <= clip)
                    expected = min(clip, ratio)
                else:
                    expected = math.exp(ref_logp[b][t]) if fallback == "dft" else 1.0
                assert weights[b][t] == pytest.approx(expected, rel=1e-12)
        assert clipped and unclipped
    unclipped_weights = objectives.compute("is", x, {"clip": 0}).weights
    assert unclipped_weights.max() > clip


# --- proximal (PSFT) ------------------------------------------------------------------------------------------


def _proximal_case(seed=4):
    logits, labels = _batch(seed)
    rng = random.Random(seed)
    ref_logp = _ref_logp(logits, labels)
    base = [[lp + rng.uniform(-0.6, 0.6) for lp in row] for row in ref_logp]  # ratios in about [0.55, 1.8]
    return logits, labels, ref_logp, base


def test_proximal_loss_and_weights_equal_plain_python_with_ratios_inside_and_outside_the_trust_region():
    logits, labels, ref_logp, base = _proximal_case()
    low, high = 0.2, 0.28
    _, logp = _torch_logp(logits, labels)
    terms = objectives.compute("proximal", objectives.TokenInputs(logp=logp, base_logp=torch.tensor(base)),
                               {"clip_low": low, "clip_high": high})
    regions = set()
    expected_loss, expected_weight = [], []
    for b in range(B):
        losses, weights = [], []
        for t in range(T):
            ratio = math.exp(ref_logp[b][t] - base[b][t])
            clipped = min(max(ratio, 1 - low), 1 + high)
            losses.append(-min(ratio, clipped))
            weights.append(ratio if ratio <= 1 + high else 0.0)
            regions.add("below" if ratio < 1 - low else "above" if ratio > 1 + high else "inside")
        expected_loss.append(losses)
        expected_weight.append(weights)
    assert regions == {"below", "inside", "above"}
    assert _flat(terms.loss) == pytest.approx(_flat(expected_loss), rel=1e-6)
    assert _flat(terms.weights) == pytest.approx(_flat(expected_weight), rel=1e-6)
    above = [[float(math.exp(lp - bl) > 1 + high) for lp, bl in zip(r, q)] for r, q in zip(ref_logp, base)]
    assert terms.diagnostics["clipped_fraction"].tolist() == above


def test_proximal_gradient_equals_finite_differences_and_is_zero_above_the_clip():
    logits, labels, _, base = _proximal_case()
    base_t = torch.tensor(base, dtype=torch.float64)
    labels_t = torch.tensor(labels)

    def loss_of(tensor):
        logp = torch.log_softmax(tensor, -1).gather(2, labels_t[..., None]).squeeze(2)
        terms = objectives.compute("proximal", objectives.TokenInputs(logp=logp, base_logp=base_t))
        return training.reduce_tokens(terms.loss, _mask(), None)

    tensor = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss_of(tensor).backward()
    assert torch.allclose(tensor.grad, _finite_difference(loss_of, tensor), atol=1e-6)
    # the weighted-NLL view of the same gradient: weight sg(r) inside, 0 above the clip
    _, logp = _torch_logp(logits, labels)
    weights = objectives.compute("proximal", objectives.TokenInputs(logp=logp, base_logp=base_t)).weights
    logits2, logp2 = _torch_logp(logits, labels)
    training.weighted_nll(logp2, weights, _mask(), None).backward()
    assert torch.allclose(tensor.grad, logits2.grad, atol=1e-10)
    dft_logits, dft_logp = _torch_logp(logits, labels)
    training.reduce_tokens(objectives.compute("dft", objectives.TokenInputs(logp=dft_logp)).loss, _mask(),
                           None).backward()
    assert not torch.allclose(tensor.grad, dft_logits.grad, atol=1e-3)


# --- asft ------------------------------------------------------------------------------------------------------


def _ref_kl(base_logits, logits):
    """KL(base || model) per position, from the logits, by loops."""
    out = []
    for b in range(B):
        row = []
        for t in range(T):
            q, p = _log_softmax(base_logits[b][t]), _log_softmax(logits[b][t])
            row.append(sum(math.exp(q[v]) * (q[v] - p[v]) for v in range(V)))
        out.append(row)
    return out


def _asft_loss(tensor, base_t, labels_t, beta):
    logp_vocab = torch.log_softmax(tensor, -1)
    logp = logp_vocab.gather(2, labels_t[..., None]).squeeze(2)
    kl = objectives.kl_to_base(logp_vocab, torch.log_softmax(base_t, -1)).double()
    terms = objectives.compute("asft", objectives.TokenInputs(logp=logp, kl_to_base=kl), {"beta": beta})
    return terms, training.reduce_tokens(terms.loss, _mask(), None)


def test_asft_loss_equals_plain_python_and_its_anchor_changes_the_gradient():
    logits, labels = _batch(5)
    base_logits, _ = _batch(6)
    beta = 0.5
    ref_logp, ref_kl = _ref_logp(logits, labels), _ref_kl(base_logits, logits)
    labels_t, base_t = torch.tensor(labels), torch.tensor(base_logits, dtype=torch.float64)
    tensor = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    terms, loss = _asft_loss(tensor, base_t, labels_t, beta)
    expected = [[-math.exp(lp) * lp + beta * kl for lp, kl in zip(r, k)] for r, k in zip(ref_logp, ref_kl)]
    assert _flat(terms.loss) == pytest.approx(_flat(expected), rel=1e-6)
    assert _flat(terms.weights) == pytest.approx(_flat([[math.exp(lp) for lp in r] for r in ref_logp]), rel=1e-6)
    assert _flat(terms.diagnostics["kl_to_base"]) == pytest.approx(_flat(ref_kl), rel=1e-6)
    loss.backward()
    # hand-derived, per logit v at a response position: DFT's -sg(p_y) (1[v=y] - p_v) plus beta (p_v - q_v), / N
    n = sum(map(sum, MASK))
    expected_grad = [[[0.0] * V for _ in range(T)] for _ in range(B)]
    for b in range(B):
        for t in range(T):
            p = [math.exp(x) for x in _log_softmax(logits[b][t])]
            q = [math.exp(x) for x in _log_softmax(base_logits[b][t])]
            for v in range(V):
                dft_part = -p[labels[b][t]] * ((v == labels[b][t]) - p[v])
                expected_grad[b][t][v] = MASK[b][t] * (dft_part + beta * (p[v] - q[v])) / n
    assert tensor.grad.flatten().tolist() == pytest.approx([g for r in expected_grad for t in r for g in t], abs=1e-9)
    # the anchor alone has no stop-gradient: its autograd gradient equals finite differences of its value
    kl_only = tensor.detach().clone().requires_grad_()
    anchor = lambda x: training.reduce_tokens(objectives.kl_to_base(torch.log_softmax(x, -1),  # noqa: E731
                                                                    torch.log_softmax(base_t, -1)), _mask(), None)
    anchor(kl_only).backward()
    assert torch.allclose(kl_only.grad, _finite_difference(anchor, kl_only), atol=1e-6)
    dft_tensor = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    _asft_loss(dft_tensor, base_t, labels_t, 0.0)[1].backward()
    assert (tensor.grad - dft_tensor.grad).abs().max() > 1e-2  # the anchor binds
    # at the base model itself the anchor is zero and so is its gradient: asft is DFT there
    at_base = base_t.clone().requires_grad_()
    _asft_loss(at_base, base_t, labels_t, beta)[1].backward()
    dft_at_base = base_t.clone().requires_grad_()
    _asft_loss(dft_at_base, base_t, labels_t, 0.0)[1].backward()
    assert torch.allclose(at_base.grad, dft_at_base.grad, atol=1e-12)


# --- the registry and the config -------------------------------------------------------------------------------


def test_unknown_objective_and_arguments_name_the_valid_ones():
    with pytest.raises(ValueError, match="unknown objective 'ppo'; valid: sft, dft, is, power, asft, proximal"):
        objectives.get("ppo")
    with pytest.raises(ValueError, match="objective 'power' has no argument 'beta'; valid: alpha"):
        objectives.resolve_args("power", {}, {"beta": 1.0})
    with pytest.raises(ValueError, match="'proximal' needs base_logprobs"):
        objectives.compute("proximal", objectives.TokenInputs(logp=torch.zeros(1, 2)))


def test_resolved_arguments_layer_defaults_legacy_training_keys_and_method_args():
    assert objectives.resolve_args("is", {"is_clip": 3.0}) == {"clip": 3.0, "expert_weight": "dft"}
    assert objectives.resolve_args("is", {"is_clip": 3.0}, {"clip": 5.0}) == {"clip": 5.0, "expert_weight": "dft"}
    assert objectives.resolve_args("power", {"is_clip": 3.0}, {"alpha": 0.25}) == {"alpha": 0.25}
    assert objectives.resolve_args("dft", {"is_clip": 3.0}) == {}


def test_schema_lists_every_objective_and_its_arguments():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    method = schema["properties"]["methods"]["additionalProperties"]
    assert method["properties"]["loss"]["enum"] == list(objectives.REGISTRY)
    by_loss = {rule["if"]["properties"]["loss"]["const"]: rule["then"]["properties"]["loss_args"]
               for rule in method["allOf"]}
    for name, objective in objectives.REGISTRY.items():
        declared = by_loss[name].get("properties", {})
        assert set(declared) == set(objective.defaults), name
        assert {k: v.get("default") for k, v in declared.items()} == objective.defaults, name


# --- real training runs -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tiny_model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "data.parquet"
    write_parquet(pd.DataFrame(_rows(AutoTokenizer.from_pretrained(tiny_model_dir))), path)
    return path


@pytest.mark.parametrize("loss,args,diagnostic", [("power", {"alpha": 0.5}, None),
                                                  ("proximal", {"clip_low": 0.2, "clip_high": 0.28},
                                                   "clipped_fraction"),
                                                  ("asft", {"beta": 0.1}, "kl_to_base")])
def test_new_objectives_train_and_log_their_weight_stats(tiny_model_dir, dataset, tmp_path, loss, args, diagnostic):
    hparams = {**HPARAMS, "loss": loss, "loss_args": args, "max_steps": 2, "learning_rate": 5e-2, "warmup_ratio": 0.0,
               "global_batch_size": 4, "per_device_batch_size": 4}  # every source in every step
    work, out = tmp_path / "work", tmp_path / "out"
    summary = training.train(str(dataset), str(tiny_model_dir), str(out), str(work), hparams)
    assert summary["global_steps"] == 2 and math.isfinite(summary["train_loss"])
    windows = [e for e in json.loads((out / "training_log.json").read_text())["log_history"] if "loss" in e]
    assert len(windows) == 2
    for source in ("self", "guided", "expert"):
        assert all(f"weight_mean/{source}" in e and f"weight_ess/{source}" in e for e in windows)
    if diagnostic:
        assert all(diagnostic in e for e in windows)
    if loss == "proximal":
        # the first step runs on the initial weights: the ratio to the base model is 1 on every token, which
        # fails if the scored log-probs were misaligned with the labels; the second step has moved
        assert [windows[0][f"weight_mean/{s}"] for s in ("self", "expert")] == pytest.approx([1.0, 1.0], abs=1e-4)
        assert windows[1]["weight_var/expert"] > 1e-6
        cache = list(work.glob("base_logprobs-*.parquet"))
        assert len(cache) == 1 and not list(work.glob("base_logprobs.part-*"))
        stamp = cache[0].stat().st_mtime_ns
        resumed = training.train(str(dataset), str(tiny_model_dir), str(out), str(work), {**hparams, "max_steps": 3})
        assert resumed["resumed_from"].endswith("checkpoint-2") and resumed["global_steps"] == 3
        assert cache[0].stat().st_mtime_ns == stamp, "a resumed job reads the cached scores"
    if loss == "asft":
        assert windows[0]["kl_to_base"] == pytest.approx(0.0, abs=1e-6)  # the first step: still the base model
        assert windows[1]["kl_to_base"] > 1e-6


def test_trainer_asft_loss_equals_a_per_token_computation_from_both_models_logits(tiny_model_dir, tmp_path):
    """The trainer's ASFT path (response positions only, scattered back) against plain-Python sums over the
    vocabulary of the model's and a perturbed base model's logits, token by token."""
    from transformers import AutoModelForCausalLM

    from test_training import _trainer

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        for parameter in base.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    beta = 0.3
    trainer, batch = _trainer(tiny_model_dir, tmp_path, loss="asft", loss_args={"beta": beta}, base_model=base)
    trainer.model.eval()
    loss = trainer.compute_loss(trainer.model, dict(batch)).item()
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.tolist()
        base_logits = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.tolist()
    total, count = 0.0, 0
    for b, row in enumerate(batch["labels"].tolist()):
        for t in range(1, len(row)):
            if row[t] == -100:
                continue
            p, q = _log_softmax(logits[b][t - 1]), _log_softmax(base_logits[b][t - 1])
            kl = sum(math.exp(qv) * (qv - pv) for pv, qv in zip(p, q))
            total += -math.exp(p[row[t]]) * p[row[t]] + beta * kl
            count += 1
    assert loss == pytest.approx(total / count, rel=1e-5)
    assert trainer._metrics["eval"]["kl_to_base"][0] > 1e-4  # the anchor is live on this batch
