"""A trained network as one .npz file: everything needed to predict from raw images.

Holds the spec, every parameter tensor, the batch-norm running statistics, the input
standardisation (mean, std), class names and image shape. Extra arrays (a checkpoint's
optimiser and schedule state) ride along under the `extra/` prefix.
"""
import json
import zipfile

import numpy as np

from .atomic import atomic_write
from .errors import UserError
from .network import Network, NetworkSpec

FORMAT = "cifar-engine-model"
FORMAT_VERSION = 1


def save_network(path, net, extra=None):
    """Write `net` (and optional `extra` arrays, by name) to `path` atomically."""
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "spec": np.array(json.dumps(net.spec.to_dict())),
        "seed": np.array(net.seed),
        "mean": net.mean,
        "std": net.std,
        "class_names": np.array(json.dumps(list(net.class_names))),
        "image_shape": np.array(net.image_shape or (), dtype=np.int64),
    }
    arrays.update({f"param/{k}": v for k, v in net.parameters.items()})
    arrays.update({f"running/{k}": v for k, v in net.running_stats.items()})
    arrays.update({f"extra/{k}": np.asarray(v) for k, v in (extra or {}).items()})
    with atomic_write(path) as file:
        np.savez(file, **arrays)


def load_network(path, max_batch=100, **network_options):
    """(net, extra) from a file written by `save_network`.

    A file that is not such a model, or one of another format version, raises UserError
    naming the file.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"{path}: not a cifar-engine model ({err})") from None
    if str(arrays.get("format", "")) != FORMAT:
        raise UserError(f"{path}: not a cifar-engine model (no '{FORMAT}' marker)")
    version = int(arrays.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise UserError(f"{path}: model format version {version}, this engine reads "
                        f"version {FORMAT_VERSION}")
    try:
        return _rebuild(arrays, max_batch, network_options)
    except (KeyError, ValueError, TypeError) as err:
        raise UserError(f"{path}: damaged cifar-engine model ({err})") from None


def _rebuild(arrays, max_batch, network_options):
    spec = NetworkSpec.from_dict(json.loads(str(arrays["spec"])))
    net = Network(spec, seed=int(arrays["seed"]), max_batch=max_batch, **network_options)
    image_shape = tuple(int(s) for s in arrays["image_shape"]) or None
    net.set_standardisation(arrays["mean"], arrays["std"],
                            json.loads(str(arrays["class_names"])), image_shape)
    for group, views in (("param", net.parameters), ("running", net.running_stats)):
        for name, view in views.items():
            stored = arrays[f"{group}/{name}"]
            if stored.shape != view.shape:
                raise ValueError(f"{group}/{name} has shape {stored.shape}, expected {view.shape}")
            view[...] = stored
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    return net, extra
