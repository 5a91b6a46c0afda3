"""The `mindthegap` console command: one sub-command per verb."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from mindthegap.grading import cli as grading_cli

    parser = argparse.ArgumentParser(prog="mindthegap", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    grading_cli.add_parser(verbs)
    _add_train_parser(verbs)
    _add_gpu_check_parser(verbs)
    return parser


def _add_gpu_check_parser(verbs) -> None:
    """`mindthegap gpu-check`: sampling, scoring, training and evaluation on one GPU (`make gpu-check`)."""
    from mindthegap import gpu_check

    check = verbs.add_parser("gpu-check", help="the package's GPU path with a tiny model, in minutes (or --device cpu)")
    gpu_check.build_parser(check)
    check.set_defaults(run=gpu_check.main)


def _add_train_parser(verbs) -> None:
    """`mindthegap train`: one training process (`accelerate launch` starts one per GPU; see mindthegap.launch)."""
    train = verbs.add_parser("train", help="weighted SFT of one method (one process; resumes from --work-dir)")
    train.add_argument("--dataset", required=True, help="training dataset (parquet)")
    train.add_argument("--model", required=True, help="model path or hub id")
    train.add_argument("--output", required=True, help="directory of the final model")
    train.add_argument("--work-dir", required=True, help="resumable Trainer checkpoints")
    train.add_argument("--hparams", required=True, help="hyper-parameters as JSON")
    train.add_argument("--revision", default=None)
    train.set_defaults(run=_run_train)


def _run_train(args) -> int:
    import json
    import logging

    from mindthegap.training import train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = train(args.dataset, args.model, args.output, args.work_dir, json.loads(args.hparams),
                    revision=args.revision)
    logging.info("done: %s", summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
