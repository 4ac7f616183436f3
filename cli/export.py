"""`cifar-engine export`: a run's model as an ONNX graph or as safetensors."""
import click

from cifar_engine.cli.inspect_run import _load, model_choice, run_folder, tta_choice
from cifar_engine.model.export import EXPORTERS, export as export_model


@click.command()
@run_folder
@click.option("--format", "fmt", type=click.Choice(list(EXPORTERS)), required=True,
              help="onnx: a graph from raw pixels to probabilities, for onnxruntime; "
                   "safetensors: the tensors, the spec and class names in its metadata.")
@model_choice
@tta_choice
@click.option("--out", type=click.Path(dir_okay=False),
              help="The file to write  [default: the model file's name in RUN, with the "
                   "format's suffix: model.onnx, best.safetensors, ...]")
@click.option("--overwrite", is_flag=True, help="Replace a file already at the output path.")
def export(run, fmt, which, tta, out, overwrite):
    """Write a run's model for other runtimes (see docs/python-api.md#export)."""
    folder, net = _load(run, which=which)
    path = out or folder.model_file(which).with_suffix(EXPORTERS[fmt].suffix)
    click.echo(export_model(net, path, fmt, tta, overwrite))
