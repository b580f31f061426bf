"""`aecluster size`, `deploy`, `export` and `models`: inspecting and shipping checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aecluster.cli.args import add_force_option, method_name
from aecluster.cli.outputs import guard_outputs
from aecluster.registry import REGISTRY, WEIGHT_FORMATS


def register(commands: Any) -> None:
    """Add the checkpoint tools to the `aecluster` parser.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The parser's subcommands (`add_subparsers`); gets `size`, `deploy`, `export` and `models`.
    """
    size = commands.add_parser(
        "size", help="print parameters and bytes on disk of a checkpoint",
        description="Parameters (trainable and non-trainable, counted as torchsummary does: "
                    "buffers such as BatchNorm statistics excluded) and the file's size in bytes.")
    size.add_argument("checkpoint")
    size.set_defaults(handler=_size)

    deploy = commands.add_parser(
        "deploy", help="write an encoder-only, compact copy of a checkpoint",
        description="Keep only what clustering needs (encoder + recipe, and the fitted groups of a "
                    "saved model; decoder and projection head dropped) and store weights as float16 "
                    "or int8 with one scale per tensor (int8 not for saved models).")
    deploy.add_argument("checkpoint")
    deploy.add_argument("output")
    deploy.add_argument("--weights", choices=WEIGHT_FORMATS, default="float16",
                        help="storage format of the weights (default float16)")
    deploy.add_argument("--reduce", metavar="CHAIN",
                        help="reducer chain of the recipe the copy ships with (default: the checkpoint's)")
    deploy.add_argument("--method", type=method_name,
                        help="clustering method of the recipe the copy ships with (default: the checkpoint's)")
    add_force_option(deploy)
    deploy.set_defaults(handler=_deploy)

    export = commands.add_parser(
        "export", help="export the encoder to ONNX",
        description="Write an ONNX model with input `images` (N,32,32,3) uint8 and output `codes` "
                    "(N,D) float32, preprocessing included, for runtimes without torch.")
    export.add_argument("checkpoint")
    export.add_argument("output", help=".onnx file to write")
    add_force_option(export)
    export.set_defaults(handler=_export)

    models = commands.add_parser("models", help="list the registered models")
    models.set_defaults(handler=_models)


def _size(args: argparse.Namespace) -> int:
    from aecluster.deploy import describe_size

    info = describe_size(args.checkpoint)
    print(f"model {info['model']} ({info['weight_format']} weights, "
          f"{'with' if info['has_decoder'] else 'without'} decoder)")
    print(f"trainable params: {info['trainable']:,}")
    print(f"non-trainable params: {info['non_trainable']:,}")
    print(f"total params: {info['total']:,}")
    print(f"encoder params: {info['encoder']:,} (what clustering uses)")
    print(f"bytes on disk: {info['bytes']:,}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from aecluster.deploy import make_deployable

    guard_outputs([(args.output, "checkpoint")], [args.checkpoint], force=args.force)
    recipe = {key: value for key, value in (("reduce", args.reduce), ("method", args.method)) if value is not None}
    make_deployable(args.checkpoint, args.output, args.weights, recipe)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size:,} bytes)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from aecluster.deploy import export_onnx

    guard_outputs([(args.output, "onnx")], [args.checkpoint], force=args.force)
    export_onnx(args.checkpoint, args.output)
    print(f"wrote {args.output}")
    return 0


def _models(args: argparse.Namespace) -> int:
    width = max(map(len, REGISTRY))
    for name, spec in REGISTRY.items():
        print(f"{name:{width}}  {spec.description}")
    return 0
