"""Does our vLLM backend speak the installed vLLM's API?  No GPU needed.

Run with the interpreter of an environment that has the sampling env's vLLM and this package:

    .venv-vllm/bin/python tests/vllm_contract/check_vllm_contract.py

It builds the arguments exactly as `mindthegap.generation.vllm` builds them (its pure functions) and checks them
against the real classes: `EngineArgs(**engine_kwargs(...))` and `SamplingParams(**sampling_kwargs(...))` are
constructed (vLLM validates both), every vLLM method the backend calls exists and takes the parameters passed,
and the output objects the backend reads (`RequestOutput`, `CompletionOutput`, `Logprob`, `FlatLogprobs`) are
built with the real classes and read back through `completion_from_output`. Scoring too: `scoring_kwargs`'
SamplingParams, the prompt log-probs vLLM computes (raw log-softmax whatever the logprobs_mode) built by vLLM's own
functions and read back through `scores_from_output`. Prints one line per check; exits 1
with the failures when any check fails.
"""

from __future__ import annotations

import inspect
import sys
import tempfile
import traceback
import typing
from collections.abc import Callable
from pathlib import Path

EXPECTED_VERSION = "0.33.0"  # envs/sampling.yaml

CHECKS: list[tuple[str, Callable[[], str | None]]] = []


def check(description: str):
    def register(function: Callable[[], str | None]):
        CHECKS.append((description, function))
        return function

    return register


def require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def parameters(function) -> set[str]:
    return set(inspect.signature(function).parameters)


def accepts(function, names: list[str], where: str) -> None:
    signature = inspect.signature(function)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    missing = [name for name in names if name not in signature.parameters]
    require(takes_any or not missing, f"{where} has no parameter(s) {missing}; its signature: {signature}")


# --- what we pass -------------------------------------------------------------------------------------------


@check("vllm imports, at the pinned version")
def _version() -> str:
    import vllm

    require(vllm.__version__ == EXPECTED_VERSION,
            f"vllm {vllm.__version__} is installed; the sampling env pins {EXPECTED_VERSION}")
    return vllm.__version__


@check("LLM(**engine_kwargs(...)): every name is an LLM or EngineArgs argument, and EngineArgs accepts them")
def _engine_args() -> str:
    from vllm import LLM, EngineArgs
    from vllm.config.model import LogprobsMode, ModelDType

    from mindthegap.generation.vllm import engine_kwargs

    with tempfile.TemporaryDirectory() as model:
        kwargs = engine_kwargs(model, revision=None, tensor_parallel_size=2, dtype="bfloat16",
                               gpu_memory_utilization=0.85, max_model_len=4096, seed=3)
        explicit = parameters(LLM.__init__) - {"self", "kwargs"}
        engine_fields = parameters(EngineArgs)
        unknown = sorted(set(kwargs) - explicit - engine_fields)
        require(not unknown, f"LLM(...) would forward {unknown} to EngineArgs, which has no such field")
        args = EngineArgs(**kwargs)  # a dataclass: an unknown name is a TypeError
        for name, value in kwargs.items():
            require(getattr(args, name) == value, f"EngineArgs.{name} became {getattr(args, name)!r}, not {value!r}")
    require(kwargs["logprobs_mode"] in typing.get_args(LogprobsMode),
            f"logprobs_mode {kwargs['logprobs_mode']!r} is not one of {typing.get_args(LogprobsMode)}")
    require(kwargs["dtype"] in typing.get_args(ModelDType), f"dtype {kwargs['dtype']!r} not in {ModelDType}")
    return ", ".join(sorted(kwargs))


@check("EngineArgs(**engine_kwargs(...)).create_model_config() on a local Qwen2-shaped config (4096 positions)")
def _model_config() -> str:
    from transformers import Qwen2Config
    from vllm import EngineArgs

    from mindthegap.generation.vllm import engine_kwargs

    with tempfile.TemporaryDirectory() as model:
        Qwen2Config(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096).save_pretrained(model)
        config = EngineArgs(**engine_kwargs(model, max_model_len=4096, dtype="bfloat16")).create_model_config()
        unset = EngineArgs(**engine_kwargs(model, max_model_len=None)).create_model_config()
    require(config.logprobs_mode == "processed_logprobs", f"logprobs_mode became {config.logprobs_mode!r}")
    require(config.max_model_len == 4096 and unset.max_model_len == 4096,
            f"max_model_len resolved to {config.max_model_len} / {unset.max_model_len} (unset), not 4096")
    return f"max_model_len {config.max_model_len}, dtype {config.dtype}, logprobs_mode {config.logprobs_mode}"


@check("SamplingParams(**sampling_kwargs(...), output_kind=FINAL_ONLY) constructs and keeps every value")
def _sampling_params() -> str:
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.sampling_params import RequestOutputKind

    from mindthegap.generation import SamplingParams
    from mindthegap.generation.vllm import sampling_kwargs

    ours = SamplingParams(n=16, temperature=1.0, top_p=0.95, max_new_tokens=4096, seed=0)
    kwargs = sampling_kwargs(ours, max_tokens=3000, seed=12345, stop_token_ids=[151645, 151643])
    built = VLLMSamplingParams(**kwargs, output_kind=RequestOutputKind.FINAL_ONLY)
    for name, value in kwargs.items():
        require(getattr(built, name) == value, f"SamplingParams.{name} became {getattr(built, name)!r}")
    require(built.output_kind == RequestOutputKind.FINAL_ONLY, "output_kind was not kept")
    greedy = VLLMSamplingParams(**sampling_kwargs(SamplingParams(temperature=0.0), max_tokens=8, seed=0,
                                                  stop_token_ids=[2]))
    require(greedy.temperature == 0.0, "temperature 0 (greedy) was not accepted as is")
    return ", ".join(sorted(kwargs))


@check("with n > 1 and a seed, sample j is drawn with seed + j (the seed we record per sample)")
def _child_seeds() -> None:
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.sampling_params import RequestOutputKind
    from vllm.v1.engine.parallel_sampling import ParentRequest

    parent = ParentRequest.__new__(ParentRequest)  # only the fields get_child_info reads
    parent.request_id, parent.child_requests, parent.cached_child_sampling_params = "r", set(), None
    parent.sampling_params = VLLMSamplingParams(n=3, seed=100, output_kind=RequestOutputKind.FINAL_ONLY)
    seeds = [parent.get_child_info(index)[1].seed for index in range(3)]
    require(seeds == [100, 101, 102], f"child seeds are {seeds}, not seed + index")


@check("SamplingParams(**scoring_kwargs(), output_kind=FINAL_ONLY): prompt log-probs of the prompt's own tokens, "
       "one token generated, the prefix cache not read")
def _scoring_params() -> str:
    from vllm import SamplingParams as VLLMSamplingParams
    from vllm.sampling_params import RequestOutputKind

    from mindthegap.generation.vllm import scoring_kwargs

    kwargs = scoring_kwargs()
    built = VLLMSamplingParams(**kwargs, output_kind=RequestOutputKind.FINAL_ONLY)
    for name, value in kwargs.items():
        require(getattr(built, name) == value, f"SamplingParams.{name} became {getattr(built, name)!r}")
    # a cached prefix would have no prompt log-probs: vLLM must skip reading the cache for these requests
    require(built.skip_reading_prefix_cache is True,
            f"skip_reading_prefix_cache is {built.skip_reading_prefix_cache!r} for a prompt_logprobs request")
    return ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()))


@check("prompt log-probs are the fp32 log-softmax of the raw logits, whatever the logprobs_mode (processed = raw)")
def _prompt_logprobs_are_raw() -> None:
    from vllm.v1.sample.sampler import Sampler
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    source = inspect.getsource(GPUModelRunner._get_prompt_logprobs_dict)
    require("scores = self.sampler.compute_logprobs(logits)" in source and "apply_temperature" not in source,
            "GPUModelRunner._get_prompt_logprobs_dict no longer scores prompt tokens by compute_logprobs(logits)")
    require("logits = self.model.compute_logits(prompt_hidden_states)" in source,
            "prompt log-probs no longer come straight from the model's logits")
    require("log_softmax(dim=-1, dtype=torch.float32)" in inspect.getsource(Sampler.compute_logprobs),
            "Sampler.compute_logprobs is no longer an fp32 log-softmax")


@check("a token prompt that fills the window is refused (score leaves one token free for the one generated)")
def _scoring_window() -> None:
    from vllm.v1.engine.input_processor import InputProcessor

    source = inspect.getsource(InputProcessor)
    require('prompt_len == max_prompt_len and model_config.runner_type == "generate"' in source,
            "InputProcessor's prompt-length check changed: revisit VLLMBackend.score's window check")


# --- what we call -------------------------------------------------------------------------------------------


@check("LLM: get_tokenizer(), and its engine in .llm_engine, a v1 LLMEngine")
def _llm_methods() -> None:
    from vllm import LLM
    from vllm.v1.engine.llm_engine import LLMEngine

    require(parameters(LLM.get_tokenizer) == {"self"}, "LLM.get_tokenizer takes arguments now")
    source = inspect.getsource(LLM.__init__)
    require("self.llm_engine = LLMEngine.from_engine_args(" in source,
            "LLM.__init__ no longer sets self.llm_engine = LLMEngine.from_engine_args(...)")
    require(LLM.__init__.__globals__.get("LLMEngine") is LLMEngine, "LLM's LLMEngine is not vllm.v1's")


@check("LLM.get_tokenizer()'s TokenizerLike: encode(text, add_special_tokens=), convert_tokens_to_ids, "
       "eos_token_id")
def _tokenizer() -> None:
    from vllm.tokenizers import TokenizerLike

    accepts(TokenizerLike.encode, ["text", "add_special_tokens"], "TokenizerLike.encode")
    require(callable(getattr(TokenizerLike, "convert_tokens_to_ids", None)), "no TokenizerLike.convert_tokens_to_ids")
    require(hasattr(TokenizerLike, "eos_token_id"), "no TokenizerLike.eos_token_id")


@check("LLMEngine: add_request(id, prompt, params), step(), has_unfinished_requests(), abort_request(ids), "
       "model_config.max_model_len")
def _engine_methods() -> None:
    from vllm.config import ModelConfig
    from vllm.v1.engine.llm_engine import LLMEngine

    positional = list(inspect.signature(LLMEngine.add_request).parameters)[1:4]
    require(positional == ["request_id", "prompt", "params"],
            f"LLMEngine.add_request's first parameters are {positional}")
    require(parameters(LLMEngine.step) == {"self"}, "LLMEngine.step takes arguments now")
    require(parameters(LLMEngine.has_unfinished_requests) == {"self"}, "has_unfinished_requests takes arguments")
    require(list(inspect.signature(LLMEngine.abort_request).parameters)[1] == "request_ids",
            "LLMEngine.abort_request's first parameter is not request_ids")
    require("self.model_config = vllm_config.model_config" in inspect.getsource(LLMEngine.__init__),
            "LLMEngine no longer keeps model_config")
    require("max_model_len" in {f.name for f in ModelConfig.__dataclass_fields__.values()},
            "ModelConfig has no max_model_len")


@check("vllm.inputs.tokens_input(ids) is a token input the engine takes as is (no second tokenization)")
def _tokens_input() -> None:
    from vllm.inputs import TokensPrompt, tokens_input

    built = tokens_input([1, 2, 3])
    require(built == {"type": "token", "prompt_token_ids": [1, 2, 3]}, f"tokens_input gave {built}")
    require("prompt_token_ids" in TokensPrompt.__annotations__, "TokensPrompt has no prompt_token_ids")
    from vllm.v1.engine.input_processor import InputProcessor

    require('isinstance(prompt, dict) and "type" in prompt' in inspect.getsource(InputProcessor.process_inputs),
            "InputProcessor.process_inputs no longer takes an engine input with a 'type' as is")


# --- what we read -------------------------------------------------------------------------------------------


def _completion_output(logprobs, finish_reason: str = "stop"):
    from vllm.outputs import CompletionOutput

    return CompletionOutput(index=1, text="4", token_ids=[5, 2], cumulative_logprob=-0.75, logprobs=logprobs,
                            finish_reason=finish_reason)


@check("RequestOutput(request_id, outputs, finished) and CompletionOutput(index, text, token_ids, logprobs, "
       "finish_reason) read back through completion_from_output")
def _outputs() -> None:
    from vllm.logprobs import Logprob
    from vllm.outputs import RequestOutput

    from mindthegap.generation.vllm import completion_from_output

    output = RequestOutput(request_id="mtg-0", prompt=None, prompt_token_ids=[1], prompt_logprobs=None,
                           outputs=[_completion_output([{5: Logprob(-0.5)}, {2: Logprob(-0.25)}])], finished=True)
    require(output.request_id == "mtg-0" and output.finished, "RequestOutput lost request_id or finished")
    completion = completion_from_output(output.outputs[0], seed=10, request_id=output.request_id)
    require(completion.token_ids == [5, 2] and completion.logprobs == [-0.5, -0.25] and completion.seed == 11,
            f"read back {completion}")


@check("FlatLogprobs (vLLM's compact log-probs) read back the same")
def _flat_logprobs() -> None:
    from vllm.logprobs import FlatLogprobs, Logprob

    from mindthegap.generation.vllm import completion_from_output

    flat = FlatLogprobs()
    flat.append({5: Logprob(-0.5)})
    flat.append({2: Logprob(-0.25)})
    completion = completion_from_output(_completion_output(flat), seed=0)
    require(completion.logprobs == [-0.5, -0.25], f"read back {completion.logprobs}")


@check("prompt log-probs as vLLM builds them (Sampler.gather_logprobs, k=0; list and flat containers), in a "
       "RequestOutput, read back through scores_from_output")
def _prompt_logprobs_output() -> str:
    import torch
    from vllm.logprobs import create_prompt_logprobs
    from vllm.outputs import RequestOutput
    from vllm.v1.engine.logprobs import LogprobsProcessor
    from vllm.v1.sample.sampler import Sampler

    from mindthegap.generation.vllm import scores_from_output

    prompt, completion = [3, 4], [2, 7]
    ids = prompt + completion
    logprobs = Sampler.compute_logprobs(torch.randn(len(ids) - 1, 11))  # position t predicts token t + 1
    tensors = Sampler.gather_logprobs(logprobs, 0, torch.tensor(ids[1:]))
    expected = logprobs[range(len(ids) - 1), ids[1:]][-len(completion):].tolist()
    widths = []
    for flat in (False, True):
        processor = LogprobsProcessor(tokenizer=None, logprobs=None, prompt_logprobs=create_prompt_logprobs(flat),
                                      cumulative_logprob=None, num_logprobs=None, num_prompt_logprobs=0)
        processor._update_prompt_logprobs(tensors)
        output = RequestOutput(request_id="mtg-0", prompt=None, prompt_token_ids=ids,
                               prompt_logprobs=processor.prompt_logprobs, outputs=[_completion_output(None)],
                               finished=True)
        widths.append(len(output.prompt_logprobs[1]))
        scores = scores_from_output(output, len(completion))
        require(scores == expected, f"flat={flat}: read back {scores}, not {expected}")
    require(widths == [1, 1], f"prompt_logprobs=0 gave {widths} entries per position, not the prompt token alone")
    return f"{len(ids)} prompt tokens, {len(completion)} scored"


@check("finish reasons: vLLM's strings for a stop and a cut are the ones we store")
def _finish_reasons() -> None:
    from vllm.v1.engine import FinishReason

    from mindthegap.generation.vllm import FINISH_REASONS

    names = (str(FinishReason.STOP), str(FinishReason.LENGTH))
    require(names == FINISH_REASONS, f"vLLM's are {names}, ours {FINISH_REASONS}")


def main() -> int:
    failures = []
    for description, function in CHECKS:
        try:
            detail = function()
        except Exception as error:  # noqa: BLE001 -- every failure is reported, then the exit status says it
            failures.append(description)
            print(f"FAIL  {description}\n      {type(error).__name__}: {error}")
            if not isinstance(error, AssertionError):
                print("      " + "".join(traceback.format_exception(error)[-3:]).replace("\n", "\n      "))
        else:
            print(f"ok    {description}" + (f" [{detail}]" if detail else ""))
    print(f"\n{len(CHECKS) - len(failures)}/{len(CHECKS)} checks passed against {Path(sys.executable).parent.parent}")
    if failures:
        print("the vLLM backend (src/mindthegap/generation/vllm.py) does not match the installed vLLM:")
        for description in failures:
            print(f"  - {description}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
