"""Image-folder data sets: ROOT/{train,test}/<class>/*.png|jpg|jpeg, as a folder or a tar archive.

Labels come from the class folder names: CIFAR-10's label order when the names are exactly
CIFAR-10's, else sorted names. Images are decoded with Pillow: C = 1 when every image is grey
('L', or 16-bit grey scaled to 8 bits), else RGB, C = 3.
"""
import io
import os
import stat

import numpy as np

from ..errors import DataError
from ..util.progress import progress_bar
from .archive import iter_files
from .dataset import CIFAR10_CLASSES, seeded_dataset
from .reasons import reason

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_FORMATS = ("PNG", "JPEG")
# The most pixels a byte of image file can honestly decode to: a 1-bit PNG packs 8 pixels
# in a byte and deflate expands at most 1032-fold; twice that leaves room for JPEG.
PIXELS_PER_BYTE = 2 * 8 * 1032


def _is_image(name):
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def _folder_images(root, progress):
    """Yield (split, class name, file name, where, bytes) for each image under a folder."""
    files = [
        (split, class_dir.name, file)
        for split in SPLITS if (root / split).is_dir()
        for class_dir in sorted((root / split).iterdir()) if class_dir.is_dir()
        for file in sorted(class_dir.iterdir()) if _is_image(file.name) and file.is_file()
    ]
    with progress_bar(len(files), f"decoding {root.name}", progress) as bar:
        for split, class_name, file in files:
            yield split, class_name, file.name, str(file), _read_file(file)
            bar.update(1)


def _archive_images(path, progress):
    """Yield (split, class name, file name, where, bytes) for each image of a tar archive."""
    for parts, data in iter_files(path, progress):
        where = f"{path}/{'/'.join(parts)}"
        if len(parts) == 4:  # one leading top folder
            parts = parts[1:]
        if len(parts) == 3 and parts[0] in SPLITS and _is_image(parts[2]):
            yield parts[0], parts[1], parts[2], where, data


def _read_file(path):
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe could block for ever
            raise DataError(f"{path}: not a regular file")
        with open(path, "rb") as file:
            return file.read()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or reason(err)})") from None


def _check_claim(where, size, n_bytes):
    """DataError unless the size (W, H) that an image's header declares has pixels, and no
    more than `n_bytes` of file can hold: checked before Pillow allocates for them."""
    if not 0 < size[0] * size[1] <= PIXELS_PER_BYTE * n_bytes:
        raise DataError(f"{where}: not a readable image (its header declares {size[0]}x"
                        f"{size[1]} pixels in a file of {n_bytes} bytes)")


def _decode(where, data, check_size=None):
    """Pixels uint8 (H*W*c,) in HWC order, c = 1 for grey images ('L'; 16-bit 'I;16' and 'I',
    their top 8 bits) else 3, and size (W, H).

    check_size : callable or None, called with the size (W, H) that the header declares,
        before decoding, to refuse a size that will not do (it raises DataError)
    """
    from PIL import Image  # only a first decode needs Pillow

    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as image:
            if check_size is not None:
                check_size(image.size)
            _check_claim(where, image.size, len(data))
            if image.mode.startswith("I"):  # 16-bit grey ('I;16', or 'I'): keep the top byte
                return (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8).ravel(), \
                    image.size
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            return np.frombuffer(image.tobytes(), np.uint8), image.size
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(f"{where}: not a readable image ({reason(err)})") from None


class _Split:
    """The decoded images of one split, in arrival order, with each one's class and file name."""

    def __init__(self):
        self.classes, self.names, self.pixels = [], [], []

    def add(self, class_name, file_name, pixels):
        self.classes.append(class_name)
        self.names.append(file_name)
        self.pixels.append(pixels)

    def arrays(self, class_names, image_shape):
        """Images uint8 (N, C*H*W) channel-major and labels int64 (N,), by class then file name."""
        label_of = {name: label for label, name in enumerate(class_names)}
        labels = [label_of[name] for name in self.classes]
        order = sorted(range(len(labels)), key=lambda i: (labels[i], self.names[i]))
        c, h, w = image_shape
        # A grey image among colour ones becomes RGB: each pixel repeated over the channels.
        hwc = np.stack([p if p.size == c * h * w else np.repeat(p, c)
                        for p in (self.pixels[i] for i in order)])
        chw = hwc.reshape(-1, h, w, c).transpose(0, 3, 1, 2)
        return chw.reshape(len(order), c * h * w), np.asarray(labels, dtype=np.int64)[order]


def _class_names(path, splits):
    """Class names in label order; DataError unless train and test hold the same classes."""
    train, test = (set(splits[split].classes) for split in SPLITS)
    if not train or not test:
        missing = "train" if not train else "test"
        raise DataError(f"{path}: no images under {missing}/<class>/ (expected {path}/"
                        f"{{train,test}}/<class>/*.png|jpg|jpeg)")
    if train != test:
        raise DataError(f"{path}: test classes do not match train classes (only in train: "
                        f"{', '.join(sorted(train - test)) or '-'}; only in test: "
                        f"{', '.join(sorted(test - train)) or '-'})")
    return CIFAR10_CLASSES if train == set(CIFAR10_CLASSES) else tuple(sorted(train))


def _decode_all(path, images):
    """Decode each (split, class, file name, where, bytes) into its split.

    Returns the splits and the one image shape (C, H, W) they share.
    """
    splits = {split: _Split() for split in SPLITS}
    first, grey = None, True

    def same_size(size):
        if first is not None and size != first[1]:
            raise DataError(f"{where}: image is {size[0]}x{size[1]} but {first[0]} is "
                            f"{first[1][0]}x{first[1][1]}: all images must have one size")

    for split, class_name, file_name, where, data in images:
        pixels, size = _decode(where, data, same_size)
        first = first or (where, size)
        grey = grey and pixels.size == size[0] * size[1]
        splits[split].add(class_name, file_name, pixels)
    if first is None:
        raise DataError(
            f"{path}: no images (expected {path}/{{train,test}}/<class>/*.png|jpg|jpeg)")
    width, height = first[1]
    return splits, (1 if grey else 3, height, width)


def read_image_folder(path, progress=None):
    """Read an image tree, or a .tar/.tar.gz/.tgz of one (maybe inside one top folder).

    Images are decoded in the order they are stored. The training set's base order (class,
    then file name) is put in the fixed order of `seeded_batches` and cut into 5 batches.
    """
    images = _archive_images(path, progress) if path.is_file() else _folder_images(path, progress)
    splits, image_shape = _decode_all(path, images)
    class_names = _class_names(path, splits)
    return seeded_dataset(
        train=splits["train"].arrays(class_names, image_shape),
        test=splits["test"].arrays(class_names, image_shape),
        class_names=class_names,
        image_shape=image_shape,
        source=f"{'image-folder archive' if path.is_file() else 'image folder'} {path}",
    )


def read_image_file(path, image_shape):
    """One PNG or JPEG file as a channel-major uint8 row of C*H*W, for a model of image_shape.

    A grey image given to a colour model is repeated over the channels, and a colour image
    given to a grey model is converted to grey (Pillow's 'L'); any other size is an error.
    """
    C, H, W = image_shape

    def model_size(size):
        if size != (W, H):
            raise DataError(f"{path}: image is {size[0]}x{size[1]}, the model takes {W}x{H}")

    pixels, _ = _decode(path, _read_file(path), model_size)
    channels = pixels.size // (H * W)
    hwc = pixels.reshape(H, W, channels)
    if channels != C:
        hwc = (np.repeat(hwc, C, axis=2) if channels == 1 else
               np.round(hwc @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[:, :, None])
    return np.ascontiguousarray(hwc.transpose(2, 0, 1)).reshape(-1)
