# Config validation, wildcard constraints, and every input / params / resources function of the workflow.
import copy
import json
import os
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError

from mindthegap.config_check import ConfigError, check_config


def config_sources():
    """The config file(s) in use, for error messages: `--configfile`s, else the paper's (+ `--config` values)."""
    files = [str(path) for path in workflow.overwrite_configfiles] or ["config/config.yaml"]
    return files + (["--config values"] if workflow.config_settings.config else [])


# Strict (unknown keys are errors, with the closest valid key), one line per error; fills in the defaults.
# A WorkflowError is printed as its message alone, without a traceback into the checker.
try:
    check_config(config, f"{workflow.basedir}/config/schema.yaml", config_sources())
except ConfigError as error:
    raise WorkflowError(str(error)) from None


scattergather:
    sample=config["sampling"]["shards"],
    evaluate=config["evaluation"]["shards"],


wildcard_constraints:
    model="|".join(config["models"]),
    method="|".join(config["methods"]),
    bench="|".join(config["benchmarks"]),
    dataset="[A-Za-z0-9_]+",  # the problems' name (schema): never "<name>.decontaminated"
    phase="self|guided",
    variant="expert|rewritten|self_expert|guided_expert",
    scatteritem=r"\d+-of-\d+",
    round=r"\d+",
    seed=r"\d+",
    # "base", or round{r}/{method}/seed{s} (mindthegap.rounds.run_id)
    run=rf"base|round\d+/({'|'.join(config['methods'])})/seed\d+",


RESULTS = config["results_dir"]


# --- paths of the per-round and per-seed outputs (README "Outputs"; the defaults leave the wildcards in) ----------


def samples_file(model="{model}", round="{round}", phase="{phase}", item="{scatteritem}"):
    return f"{RESULTS}/samples/{model}/round{round}/{phase}/{item}.parquet"


def verified_file(model="{model}", round="{round}", phase="{phase}", item="{scatteritem}"):
    return f"{RESULTS}/verified/{model}/round{round}/{phase}/{item}.parquet"


def split_file(model="{model}", round="{round}", kind="{kind}"):
    """The problems the policy of the round solved on its own (kind correct) or not (failed)."""
    return f"{RESULTS}/splits/{model}/round{round}/self.{kind}.ids"


def dataset_file(model="{model}", round="{round}", variant="{variant}"):
    return f"{RESULTS}/datasets/{model}/round{round}/{variant}.parquet"


def dataset_stats_file(model="{model}", round="{round}", variant="{variant}"):
    return f"{RESULTS}/datasets/{model}/round{round}/{variant}.stats.json"


def checkpoint_dir(model="{model}", round="{round}", method="{method}", seed="{seed}"):
    return f"{RESULTS}/checkpoints/{model}/round{round}/{method}/seed{seed}"


def run_id(round, method, seed):
    """`base`, or `round{r}/{method}/seed{s}`: one evaluated model (mindthegap.rounds)."""
    from mindthegap.rounds import run_id as make_id

    return make_id(round, method, seed)


def eval_dir(model="{model}", run="{run}"):
    return f"{RESULTS}/eval/{model}/{run}"


def metrics_file(model="{model}", run="{run}", bench="{bench}"):
    return f"{eval_dir(model, run)}/{bench}/metrics.json"


def canonical(value):
    """A params value with its dict keys sorted: Snakemake compares params by their text, so key order alone
    (e.g. a config rewritten by a YAML tool) must not trigger a rerun."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


# --- models ---------------------------------------------------------------------------------------------


def model_cfg(model):
    return config["models"][model]


def built_model_dir(model):
    return f"{RESULTS}/models/{model}"


def model_input(wildcards):
    """The built model directory for locally built models; the prefetch marker of hub models (the jobs read the
    hub cache offline); nothing for a model in a local directory."""
    if "build" in model_cfg(wildcards.model):
        return [built_model_dir(wildcards.model)]
    return [prefetched("model", wildcards.model)] if hub_model(wildcards.model) else []


def model_path(wildcards):
    cfg = model_cfg(wildcards.model)
    return built_model_dir(wildcards.model) if "build" in cfg else cfg["path"]


def model_revision(wildcards):
    cfg = model_cfg(wildcards.model)
    return None if "build" in cfg else cfg.get("revision", "main")


def demo_model_params(wildcards):
    return canonical({**config["demo_model"], "guided_template": guided_template()})


# --- data -----------------------------------------------------------------------------------------------


def prepared_problems_file():
    """The training problems as loaded by prepare_problems: what the contamination check reads."""
    return f"{RESULTS}/problems/{config['problems']['name']}.parquet"


def problems_file():
    """The training problems every later stage reads (sampling, verification, rewriting): the prepared file with
    `decontamination: report` (the paper's data, unchanged), the decontaminated one with `drop`."""
    if config["decontamination"] == "drop":
        return f"{RESULTS}/problems/{config['problems']['name']}.decontaminated.parquet"
    return prepared_problems_file()


def contamination_file():
    return f"{RESULTS}/contamination/{config['problems']['name']}.json"


def contamination_inputs(wildcards):
    return {"problems": prepared_problems_file(),
            "benchmarks": expand(f"{RESULTS}/benchmarks/{{bench}}.parquet", bench=list(config["benchmarks"]))}


def source_spec(spec):
    """A data-source spec with {benchmark_root} filled in (so the spec in params is the one used); the problems'
    own `name` (an output file name, not a hub subset) is left out."""
    spec = {key: value for key, value in copy.deepcopy(spec).items() if key != "name"}
    if "path" in spec:
        spec["path"] = spec["path"].format(benchmark_root=config["benchmark_root"])
    return canonical(spec)


def benchmark_spec(wildcards):
    return source_spec(config["benchmarks"][wildcards.bench])


# --- the hub: fetched once by rules/fetch.smk, read offline by every other job -----------------------------

HUB_CACHE = config["hub_cache"] or f"{RESULTS}/hf_cache"


def hub_model(model):
    from mindthegap.fetch import is_hub_id

    cfg = model_cfg(model)
    return "build" not in cfg and is_hub_id(cfg["path"])


def hub_source(spec):
    from mindthegap.fetch import is_hub_id

    return spec["source"] == "hf" and is_hub_id(spec["path"])


def prefetched(kind, name):
    """The marker of one prefetched repository. ancient(): a re-fetch alone never reruns the jobs that read it."""
    return ancient(f"{RESULTS}/prefetch/{kind}/{name}.json")


def data_source_input(kind, name, spec):
    """What a data-preparing job reads: the prefetch marker of a hub dataset, or the local file itself (so that an
    edited file reruns its stage and everything after it). A local file not in place yet is no input: the grid
    still plans (README step 2 may come later), and the job that reads it names the missing file."""
    if hub_source(spec):
        return [prefetched(kind, name)]
    path = source_spec(spec).get("path", "")
    return [path] if spec["source"] == "local" and os.path.exists(path) else []


def problems_input(wildcards):
    return data_source_input("problems", config["problems"]["name"], config["problems"])


def benchmark_input(wildcards):
    return data_source_input("benchmark", wildcards.bench, config["benchmarks"][wildcards.bench])


def uses_released():
    """Whether a planned method trains on the authors' released data (`data: released`, config `released`)."""
    used = any(spec.get("data") == "released" and (config.get("extensions", False) or not spec.get("extension"))
               for spec in config["methods"].values())  # planned_methods(), which is defined further down
    if used and "released" not in config:
        raise WorkflowError("a planned method has `data: released` but the config has no `released:` section "
                            "(the authors' data on the hub: see config/config.yaml)")
    return used


def released_spec_of(model):
    """The data-source spec of one model's release (its `data_files`), {benchmark_root} filled in."""
    from mindthegap.released import release_spec

    return source_spec(release_spec(config["released"], model))


def released_spec(wildcards):
    return released_spec_of(wildcards.model)


def released_fields(wildcards):
    return canonical(config["released"].get("fields", {}))


def released_inputs(wildcards):
    """The model (its tokenizer applies the training template) and the release: its prefetch marker, or the
    local file."""
    return {"model": model_input(wildcards),
            "release": data_source_input("released", wildcards.model, released_spec_of(wildcards.model))}


def prefetch_kind(wildcards):
    return "model" if wildcards.kind == "model" else "dataset"


def prefetch_spec(wildcards):
    if wildcards.kind == "model":
        cfg = model_cfg(wildcards.name)
        return canonical({"path": cfg["path"], "revision": cfg.get("revision", "main")})
    if wildcards.kind == "problems":
        return source_spec(config["problems"])
    if wildcards.kind == "released":
        return released_spec_of(wildcards.name)
    return source_spec(config["benchmarks"][wildcards.name])


def prefetch_config_key(wildcards):
    """Where the repository is set in the config, for the error messages of the prefetch."""
    return {"model": f"models.{wildcards.name}", "problems": "problems", "released": "released"}.get(wildcards.kind,
                                                                               f"benchmarks.{wildcards.name}")


def uses_hub():
    return (any(hub_model(m) for m in config["models"]) or hub_source(config["problems"])
            or any(hub_source(spec) for spec in config["benchmarks"].values())
            or (uses_released() and hub_source(config["released"])))


if uses_hub():  # every job (local, or re-parsed in a SLURM job) reads the hub cache offline; the prefetch goes online
    from mindthegap.fetch import hub_environment

    os.environ.update(hub_environment(HUB_CACHE, offline=True))


# --- sampling and verification ----------------------------------------------------------------------------


def guided_template():
    from mindthegap.prompts import DEFAULT_GUIDED_TEMPLATE

    return config["sampling"]["guided"].get("template", DEFAULT_GUIDED_TEMPLATE)


def sample_inputs(wildcards):
    inputs = {"problems": problems_file(), "model": policy_input(wildcards)}
    if wildcards.phase == "guided":  # re-solve only what the model failed on its own
        inputs["failed"] = split_file(wildcards.model, wildcards.round, "failed")
    return inputs


def sampling_settings(section):
    """The SamplingParams fields of a config section (rewriting phase or evaluation), keys in a fixed order."""
    return {key: section[key] for key in ("max_new_tokens", "n", "seed", "temperature", "top_p")}


def sampling_params(wildcards):
    return sampling_settings(config["sampling"][wildcards.phase])


def sampling_backend_options(wildcards):
    return backend_options("sampling", wildcards)


def evaluation_backend_options(wildcards):
    return backend_options("evaluation", wildcards)


def train_template(wildcards):
    return model_cfg(wildcards.model).get("train_template", "chat")


def backend_options(section, wildcards):
    """Backend settings of a sampling or evaluation job."""
    cfg = model_cfg(wildcards.model)
    options = {"batch_size": config[section]["batch_size"], "stop_tokens": cfg.get("stop_tokens", [])}
    if cfg.get("max_model_len"):  # both backends: prompt + new tokens fit it (unset: the model's own window)
        options["max_model_len"] = cfg["max_model_len"]
    if config[section]["backend"] == "vllm":
        options["tensor_parallel_size"] = config["sampling"].get("tensor_parallel_size", 1)
    return canonical(options)


def policy_gap_backend_options(wildcards):
    """The sampling backend's settings, with the policy gap's own batch size (rows per forward pass)."""
    return canonical({**backend_options("sampling", wildcards), "batch_size": config["policy_gap"]["batch_size"]})


def prompt_spec(wildcards):
    cfg = model_cfg(wildcards.model)
    if wildcards.phase == "self":  # self samples use the training prompt: their log-probs are the behaviour policy
        return {"kind": "train", "template": cfg.get("train_template", "chat")}
    return {"kind": "guided", "template": guided_template()}


def verified_shards(phase):
    # gather.sample() fills {scatteritem}; {model} and {round} reach it doubled and stay wildcards
    return gather.sample(verified_file("{{model}}", "{{round}}", phase, "{scatteritem}"))


# --- rewriting and training -------------------------------------------------------------------------------


def method_is_extension(method):
    """Ours, not in the paper (DR+IS, the data-source ablations): planned only with `extensions: true`, and
    labelled as ours in the tables."""
    return config["methods"][method].get("extension", False)


def planned_methods():
    """The methods of this run, in config order: the paper's grid, plus our extensions when `extensions: true`."""
    from mindthegap.rounds import planned_methods as planned

    return planned(config)


def trained_methods():
    from mindthegap.rounds import trained_methods as trained

    return trained(config)


def rounds():
    """1 .. rewrite.rounds (1 = the paper: one offline rewriting round)."""
    return list(range(1, config["rewrite"]["rounds"] + 1))


def training_seeds():
    return list(config["training"]["seeds"])


def methods_by_round():
    """round -> the methods trained in it (mindthegap.rounds); a setting that cannot be planned stops the plan."""
    from mindthegap.rounds import methods_by_round as plan

    try:
        return plan(config["rewrite"], config["methods"], trained_methods())
    except ValueError as error:
        raise WorkflowError(f"{', '.join(config_sources())}: {error}") from None


ROUND_METHODS = methods_by_round()


def round_methods(round):
    return ROUND_METHODS[int(round)]


def round_variants(round):
    """The dataset variants built in a round: those of the methods it trains."""
    return sorted({config["methods"][m]["data"] for m in round_methods(round)})


def trained_runs():
    """(round, method, seed) of every training job, in report order: round, then config order, then seed."""
    return [(r, m, s) for r in rounds() for m in round_methods(r) for s in training_seeds()]


def planned_runs():
    """Every evaluated model: `base` once, then each trained run (mindthegap.rounds.run_id)."""
    runs = [run_id(0, "base", None)] if "base" in planned_methods() else []
    return runs + [run_id(*run) for run in trained_runs()]


def checkpoint_or_base(model, run):
    """Input, path and revision of a model that is the base model (run None) or a checkpoint of a run."""
    wildcards = SimpleNamespace(model=model)
    if run is None:
        return model_input(wildcards), model_path(wildcards), model_revision(wildcards)
    directory = checkpoint_dir(model, run.round, run.method, run.seed)
    return [directory], directory, None


def policy(wildcards):
    """The model that samples round {round}: the base model in round 1, else the round r-1 checkpoint of
    `rewrite.round_policy` (mindthegap.rounds.policy_run)."""
    from mindthegap.rounds import policy_run

    run = policy_run(int(wildcards.round), config["rewrite"], training_seeds())
    return checkpoint_or_base(wildcards.model, run)


def policy_input(wildcards):
    return policy(wildcards)[0]


def policy_path(wildcards):
    return policy(wildcards)[1]


def policy_revision(wildcards):
    return policy(wildcards)[2]


def rewrite_inputs(wildcards):
    inputs = {"problems": problems_file(), "model": model_input(wildcards)}
    if wildcards.variant in ("rewritten", "self_expert"):
        inputs["self"] = verified_shards("self")
    if wildcards.variant in ("rewritten", "guided_expert"):
        inputs["guided"] = verified_shards("guided")
    return inputs


def training_data_file(model, round, variant):
    """The dataset a method of `variant` trains on in a round: the round's rewritten/expert data, or the authors'
    released data (one file per model, the same in every round: rules/rewrite.smk `released`)."""
    if variant == "released":
        return f"{RESULTS}/datasets/{model}/released.parquet"
    return dataset_file(model, round, variant)


def training_data_stats_file(model, round, variant):
    return training_data_file(model, round, variant).replace(".parquet", ".stats.json")


def training_dataset(wildcards):
    return training_data_file(wildcards.model, wildcards.round, config["methods"][wildcards.method]["data"])


def training_init(wildcards):
    """What a training job starts from: the base model, or with `rewrite.round_init: previous` (rounds >= 2) the
    same method and seed of the previous round (mindthegap.rounds.init_run)."""
    from mindthegap.rounds import Run, init_run

    run = Run(int(wildcards.round), wildcards.method, int(wildcards.seed))
    return checkpoint_or_base(wildcards.model, init_run(run, config["rewrite"]))


def training_init_input(wildcards):
    return training_init(wildcards)[0]


def training_init_path(wildcards):
    return training_init(wildcards)[1]


def training_init_revision(wildcards):
    return training_init(wildcards)[2]


def training_hparams(wildcards):
    """The method's full hyper-parameters: shared `training` values, its own overrides, its objective and the
    objective's resolved arguments (`loss_args`, absent for an objective without any), and the run's seed (one of
    `training.seeds`: adding a seed adds runs, it never retrains the others). A change of any retrains."""
    from mindthegap.objectives import resolve_args

    method = config["methods"][wildcards.method]
    shared = {key: value for key, value in config["training"].items() if key != "seeds"}
    hparams = {**shared, **method.get("training", {}), "loss": method["loss"], "seed": int(wildcards.seed)}
    loss_args = resolve_args(method["loss"], hparams, method.get("loss_args"))
    return {**hparams, "loss_args": loss_args} if loss_args else hparams


def training_hparams_json(wildcards):
    return json.dumps(training_hparams(wildcards), sort_keys=True)


def training_layout(wildcards):
    """GPUs × nodes × per-device batch × accumulation of one training job: a params entry, so another layout
    retrains (Snakemake compares params). Fails at planning time when the global batch does not divide."""
    from mindthegap.launch import training_layout as layout

    return layout(training_hparams(wildcards), RES["training_gpus"], RES["training_nodes"])


# --- evaluation and report --------------------------------------------------------------------------------


def evaluated_model(wildcards):
    from mindthegap.rounds import parse_run

    run = parse_run(wildcards.run)
    return checkpoint_or_base(wildcards.model, None if run.method == "base" else run)


def run_model_input(wildcards):
    return evaluated_model(wildcards)[0]


def run_model_path(wildcards):
    return evaluated_model(wildcards)[1]


def run_model_revision(wildcards):
    return evaluated_model(wildcards)[2]


def run_fields(wildcards):
    """Method, round and seed of the evaluated run: recorded in its metrics.json for the tables."""
    from mindthegap.rounds import parse_run

    return parse_run(wildcards.run)._asdict()


def harness_stop_strings():
    from mindthegap.prompts import HARNESS_STOP_STRINGS

    return list(HARNESS_STOP_STRINGS)


def evaluation_params(wildcards):
    return sampling_settings(config["evaluation"])


def evaluation_prompt(wildcards):
    return {"kind": "eval", "template": model_cfg(wildcards.model)["eval_template"]}


def evaluation_judge_inputs(wildcards):
    """Every shard's samples of every benchmark of one run, and the benchmarks' gold answers."""
    run = eval_dir(wildcards.model, wildcards.run)
    return {
        "samples": [path for bench in config["benchmarks"]
                    for path in gather.evaluate(f"{run}/samples/{{scatteritem}}/{bench}.parquet")],
        "benchmarks": expand(f"{RESULTS}/benchmarks/{{bench}}.parquet", bench=list(config["benchmarks"])),
    }


def evaluation_judge_outputs():
    """Per benchmark: its verdicts and metrics (what the tables read), from one judging job per run."""
    outputs = {}
    for bench in config["benchmarks"]:
        outputs[f"verdicts_{bench}"] = f"{eval_dir()}/{bench}/verdicts.parquet"
        outputs[f"metrics_{bench}"] = metrics_file(bench=bench)
    return outputs


def evaluation_sample_outputs():
    """One samples file per benchmark for each evaluation shard: a shard's job samples all benchmarks."""
    return {bench: f"{eval_dir()}/samples/{{scatteritem}}/{bench}.parquet" for bench in config["benchmarks"]}


def stats_rounds():
    """(round, variant) of every rewritten dataset (not the expert data): the report's source composition."""
    return [(r, v) for r in rounds() for v in round_variants(r) if v != "expert"]


def report_inputs(wildcards):
    model = wildcards.model
    return {
        "metrics": [metrics_file(model, run, bench) for run in planned_runs() for bench in config["benchmarks"]],
        "checkpoints": [checkpoint_dir(model, *run) for run in trained_runs()],
        "stats": [training_data_stats_file(model, r, v) for r, v in stats_rounds()],
    }


def report_checkpoint_runs(wildcards):
    """The run of each checkpoint input, in the same order."""
    return [run_id(*run) for run in trained_runs()]


def report_stats_rounds(wildcards):
    """The (round, variant) of each stats input, in the same order."""
    return [[r, v] for r, v in stats_rounds()]


def report_rounds(wildcards):
    """What the tables say about the rounds: how many, who sampled them, how they trained."""
    cfg = config["rewrite"]
    return {"rounds": cfg["rounds"], "policy": cfg["round_policy"] if cfg["rounds"] > 1 else None,
            "init": cfg["round_init"] if cfg["rounds"] > 1 else None, "seeds": training_seeds()}


def method_labels():
    return {method: config["methods"][method]["label"] for method in planned_methods()}


def method_specs():
    """Label and dataset variant of each planned method: the by-round table names the data each run trained on."""
    return {m: {"label": config["methods"][m]["label"], "data": config["methods"][m].get("data", "")}
            for m in planned_methods()}


def extension_methods():
    """The planned methods that are ours: the tables label them "(ours)" and never compare them to the paper."""
    return [method for method in planned_methods() if method_is_extension(method)]


def model_names(wildcards):
    """Config key and path of a model: the report matches them to the paper's model names."""
    return [wildcards.model, model_cfg(wildcards.model).get("path")]


def policy_gap_file(model="{model}", name="{name}"):
    """One table of the policy-gap stage under the base model (rows.parquet, summary.json): round 1's rewritten
    dataset, the paper's offline rewriting (rules/gap.smk)."""
    return f"{RESULTS}/policy_gap/{model}/{name}"


def policy_gap_checkpoint_file(model="{model}", run="{run}", ext="{ext}"):
    """The same rows scored under one trained run's checkpoint (`run`: round{r}/{method}/seed{s})."""
    return f"{RESULTS}/policy_gap/{model}/checkpoints/{run}.{ext}"


def policy_gap_outputs(models):
    """The policy-gap tables of each model (rules/gap.smk): with `policy_gap.enabled`, when a method trains on data
    rewritten from our own sampling (not the authors' released data alone); with `policy_gap.checkpoints`, one per
    trained method too."""
    ours = {"rewritten", "self_expert", "guided_expert"}  # the variants built from our own sampling
    if not (config["policy_gap"]["enabled"] and any(config["methods"][m]["data"] in ours for m in trained_methods())):
        return []
    outputs = [policy_gap_file(model, name) for model in models for name in ("rows.parquet", "summary.json")]
    if config["policy_gap"]["checkpoints"]:
        outputs += [policy_gap_checkpoint_file(model, run_id(*run), ext) for model in models
                    for run in trained_runs() for ext in ("parquet", "json")]
    return outputs


# --- figures and tables of the report (rules/report.smk) ---------------------------------------------------


def policy_gap_tables(model):
    """The policy-gap stage's per-row table and per-source summary of one model under its base model (what the
    report draws); [] when the stage does not run."""
    return [path for path in policy_gap_outputs([model]) if os.path.basename(path) in ("rows.parquet", "summary.json")]


def policy_gap_input(wildcards):
    return policy_gap_tables(wildcards.model)


def policy_gap_checkpoint_summaries(wildcards):
    """The policy-gap summaries under each trained checkpoint (`policy_gap.checkpoints`), else none."""
    if not policy_gap_tables(wildcards.model) or not config["policy_gap"]["checkpoints"]:
        return []
    return [policy_gap_checkpoint_file(wildcards.model, run_id(*run), "json") for run in trained_runs()]


def policy_gap_checkpoint_runs(wildcards):
    """The run of each checkpoint summary input, in the same order."""
    return [run_id(*run) for run in trained_runs()] if policy_gap_checkpoint_summaries(wildcards) else []


def report_labels(what):
    """The labels of a figure or table in the Snakemake report: its model (a wildcard, filled in by the report)
    and what it shows."""
    return {"model": "{model}", "what": what}


def evaluation_files(wildcards, name):
    """One file (metrics.json, verdicts.parquet) of every evaluated run of one model, all benchmarks, in the order
    of `evaluated_runs()` (each run's benchmarks in config order)."""
    return [f"{eval_dir(wildcards.model, run)}/{bench}/{name}" for run in planned_runs()
            for bench in config["benchmarks"]]


def evaluation_metric_files(wildcards):
    return evaluation_files(wildcards, "metrics.json")


def evaluation_verdict_files(wildcards):
    return evaluation_files(wildcards, "verdicts.parquet")


def run_labels():
    """Every evaluated run (`planned_runs()`) -> its label: the method's, its round when >= 2, its seed when there
    are several (mindthegap.report.run_label); what the figures and detail tables name a run."""
    from mindthegap.report import run_label
    from mindthegap.rounds import parse_run

    labels = method_labels()
    return {run: run_label(labels, parse_run(run), with_seed=len(training_seeds()) > 1) for run in planned_runs()}


def extension_runs():
    """The runs of our extension methods: the figures and tables label them "(ours)"."""
    from mindthegap.rounds import parse_run

    return [run for run in planned_runs() if parse_run(run).method in extension_methods()]


def source_datasets():
    """(round, variant) of every training dataset (each round's variants; the released data once, as round 1):
    the data-per-source table and figure."""
    return [(r, v) for r in rounds() for v in round_variants(r) if not (v == "released" and r > 1)]


def source_labels():
    """The name of each of `source_datasets()`: the variant, with its round when >= 2."""
    from mindthegap.report import round_label

    return [round_label(variant, r) for r, variant in source_datasets()]


def dataset_stats_files(wildcards):
    return [training_data_stats_file(wildcards.model, r, v) for r, v in source_datasets()]


def source_inputs(wildcards):
    """The training datasets of one model (rows and stats, in `source_datasets()` order) and, when the
    policy-gap stage runs, its summary."""
    inputs = {"datasets": [training_data_file(wildcards.model, r, v) for r, v in source_datasets()],
              "stats": dataset_stats_files(wildcards)}
    summary = [path for path in policy_gap_tables(wildcards.model) if path.endswith(".json")]
    if summary:
        inputs["gap_summary"] = summary[0]
    return inputs


def trained_checkpoints(wildcards):
    return [checkpoint_dir(wildcards.model, *run) for run in trained_runs()]


def report_outputs(model):
    """The figures and tables of one model in the report (the PNG and HTML the report shows, the SVG and
    Markdown / CSV / LaTeX beside them)."""
    figures = ["accuracy", "pass_at_k"]
    if trained_methods():
        figures += ["sources", "training"]
    if policy_gap_tables(model):
        figures.append("policy_gap")
    tables = ["", ".evaluation"] + ([".sources"] if trained_methods() else [])
    return (expand(f"{RESULTS}/figures/{model}/{{figure}}.{{ext}}", figure=figures, ext=["png", "svg"])
            + expand(f"{RESULTS}/tables/{model}{{table}}.{{ext}}", table=tables, ext=["md", "csv", "tex", "html"])
            + [f"{RESULTS}/tables/{model}.rounds.{ext}" for ext in ("csv", "json")])


def get_final_output():
    models = list(config["models"])
    outputs = [path for model in models for path in report_outputs(model)]
    outputs.append(f"{RESULTS}/manifest.json")
    outputs += [contamination_file()] + [contamination_file().replace(".json", ext) for ext in (".md", ".html")]
    outputs += [training_data_stats_file(model, r, v) for model in models for r, v in source_datasets()]
    return outputs + policy_gap_outputs(models)


# --- cluster resources (README "Cluster resources"; profiles/slurm turns them into sbatch flags) -----------

RES = config["resources"]


def scaled(minutes):
    """A runtime that grows with each retry, so a job killed at its time limit gets a longer one."""
    return lambda wildcards, attempt: minutes * attempt


def scaled_mem(mb):
    return lambda wildcards, attempt: int(mb * (1 + 0.5 * (attempt - 1)))


def sampling_gpus(section):
    return config["sampling"].get("tensor_parallel_size", 1) if config[section]["backend"] == "vllm" else 1


def scoring_resources():
    """sbatch resources of a policy-gap job: the sampling backend's GPUs, requeued (it resumes from its chunks)."""
    return dict(gpu=sampling_gpus("sampling"), gpu_model=RES["gpu_model"], tasks_per_gpu=0,
                slurm_extra=requeue_flag(), slurm_partition=RES["gpu_partition"], slurm_account=RES["account"],
                runtime=scaled(RES["sampling_runtime_min"]), mem_mb=scaled_mem(RES["gpu_mem_mb"]))


def requeue_flag():
    """sbatch flag of the resumable rules (sample, evaluate_sample, train, policy_gap*): they continue from their
    chunks or their last checkpoint, so SLURM may requeue them on preemption or node failure. Every other rule gets
    `--no-requeue` from the profile's default-resources (a requeued job restarts from scratch)."""
    return "--requeue" if RES["requeue"] else "--no-requeue"


def training_resources():
    """sbatch resources of one training job. One node: `--gpus=[model:]N`. Several nodes (`training_nodes` > 1):
    `--nodes`, one task per node (`mpi` makes the jobstep run the script on the first node, which starts one
    `accelerate launch` per node through srun) and `--gpus-per-node`; `gpus_per_node` tells the script the layout."""
    gpus, nodes = RES["training_gpus"], RES["training_nodes"]
    common = dict(gpus_per_node=gpus, training_strategy=RES["training_strategy"],
                  slurm_partition=RES["gpu_partition"], slurm_account=RES["account"],
                  runtime=scaled(RES["training_runtime_min"]), mem_mb=scaled_mem(RES["gpu_mem_mb"]))
    if nodes == 1:
        return dict(gpu=gpus, gpu_model=RES["gpu_model"], tasks_per_gpu=0, slurm_extra=requeue_flag(), **common)
    model = f"{RES['gpu_model']}:" if RES["gpu_model"] else ""
    return dict(nodes=nodes, tasks=nodes, mpi="srun",
                slurm_extra=f"--gpus-per-node={model}{gpus} {requeue_flag()}", **common)
