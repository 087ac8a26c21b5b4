"""The user's own image (``--image``, Launchpad ``image``, a dataset's ``image`` column).

It is checked when the request is registered, before any model loads: the file exists,
decodes, holds at most 40 megapixels, and lies under an allowed folder when the path came
from the UI or a dataset file (so a UI user cannot make the server read an arbitrary file
and show it in the previews; the CLI reads what its user names). Its bytes are then copied
into the storage's ``inputs/`` under their digest, and the request keeps that reference
(``inputs/<sha256>.<ext>``): runs read images from there only, on any machine that shares
the storage, and a changed image is a changed request. It is fitted to the model's size by
scale and centre crop when the scene starts, with a note saying how.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps
from upath import UPath

from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.storage import atomic_write_bytes, default_storage_path, vidgen_home

MAX_MEGAPIXELS = 40
INPUTS = "inputs"
_REFERENCE = re.compile(r"^inputs/[0-9a-f]{64}\.(png|jpg|webp|bmp|tif|gif)$")
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}


def drop_folder() -> Path:
    """``VIDGEN_HOME/inputs``: where UI users put images they name in the Launchpad."""
    return vidgen_home() / INPUTS


def store_image(path: str | Path, roots: Sequence[Path] | None = None, base: str = "") -> str:
    """Check the image at ``path`` (see ``check_image``), copy it into the storage's
    ``inputs/`` under its digest (once), and return the reference the request keeps."""
    source = check_image(str(path), roots)
    data = source.read_bytes()
    with Image.open(BytesIO(data)) as image:
        extension = _EXTENSIONS.get(image.format or "", "png")
        if image.format not in _EXTENSIONS:  # GIF, ...: its first frame, as PNG
            buffer = BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
            data = buffer.getvalue()
    reference = f"{INPUTS}/{hashlib.sha256(data).hexdigest()}.{extension}"
    target = UPath(base or default_storage_path()) / reference
    if not target.exists():
        atomic_write_bytes(target, data)
    return reference


def with_stored_image(
    request, roots: Sequence[Path] | None = None, relative_to: Path | None = None
):
    """``request`` with its image (a path) stored and replaced by the reference; as it is
    when it has none or holds a reference already. ``relative_to``: the folder a relative
    path is read from (a dataset's own, VIDGEN_HOME/inputs for the Launchpad)."""
    return with_stored_input(request, "image", store_image, is_reference, roots, relative_to)


def with_stored_input(request, name: str, store, is_stored, roots, relative_to):
    """``request`` with its file setting ``name`` (a path) stored by ``store(path, roots)``
    and replaced by the reference; as it is when unset or already ``is_stored``."""
    value = getattr(request.settings, name)
    if not value or is_stored(value):
        return request
    path = Path(value).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = Path(relative_to) / path
    settings = request.settings.model_copy(update={name: store(path, roots)})
    return request.model_copy(update={"settings": settings})


def is_reference(value: str) -> bool:
    return bool(_REFERENCE.match(value))


def stored_image(reference: str, base: str = "") -> Image.Image:
    """The stored image of a request (RGB, upright); one line when it is not a reference
    into ``inputs/`` or is gone."""
    path = stored_input_path(reference, is_reference, "image", base)
    try:
        data = path.read_bytes()
    except (OSError, FileNotFoundError):
        raise ModelChoiceError(f"image {reference}: gone from {path.parent}") from None
    with Image.open(BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def stored_input_path(reference: str, is_stored, what: str, base: str = "") -> UPath:
    """Where the stored input ``reference`` lies in the storage; one line when it is not a
    reference (``is_stored``) into ``inputs/``. ``what``: ``image``, ``music`` (its option)."""
    if not is_stored(reference):
        raise ModelChoiceError(
            f"{what} {reference!r} is not a registered input (inputs/<sha256>.<ext>); it "
            f"reaches a run through vidgen generate --{what}, the Launchpad or a dataset"
        )
    return UPath(base or default_storage_path()) / reference


def check_image(path: str, roots: Sequence[Path] | None = None) -> Path:
    """The resolved path of a usable image; one ``ModelChoiceError`` line otherwise.

    ``roots``: the folders a path may lie under (after resolving links); None: anywhere
    (the CLI reads what its user names).
    """
    resolved = Path(path).expanduser().resolve()
    if not under_roots(resolved, roots):
        allowed = ", ".join(str(Path(r)) for r in roots) or "none configured"
        raise ModelChoiceError(
            f"image {path}: only files under the allowed folders are read ({allowed}); put it in "
            "VIDGEN_HOME/inputs or list its folder in video_generator.image_dirs"
        )
    if not resolved.is_file():
        raise ModelChoiceError(f"image {path}: no such file")
    limit = MAX_MEGAPIXELS * 1_000_000
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(resolved) as image:
                size = image.size
                if size[0] * size[1] <= limit:
                    image.load()  # decodes the whole file: a truncated one fails here
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        size = None  # PIL's own limit (about 89 megapixels) is well above ours
    except (OSError, SyntaxError, ValueError) as exc:
        raise ModelChoiceError(f"image {path}: does not decode as an image ({exc})") from None
    if size is None or size[0] * size[1] > limit:
        shown = f"{size[0]}x{size[1]}" if size else "it"
        raise ModelChoiceError(
            f"image {path}: {shown} is over the limit of {MAX_MEGAPIXELS} megapixels"
        )
    return resolved


def under_roots(resolved: Path, roots: Sequence[Path] | None) -> bool:
    """Whether ``resolved`` lies under one of ``roots`` (links resolved); None: anywhere."""
    return roots is None or any(_inside(resolved, Path(r)) for r in roots)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root.expanduser().resolve())
    except ValueError:
        return False
    return True


def fit_image(image: Image.Image, width: int, height: int) -> tuple[Image.Image, str | None]:
    """Scale ``image`` to cover ``width`` x ``height`` and crop the centre; the note says what
    changed (None when it already had that size)."""
    if image.size == (width, height):
        return image, None
    fitted = ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
    scale = max(width / image.width, height / image.height)
    cut_x = round(image.width * scale) - width
    cut_y = round(image.height * scale) - height
    crop = []
    if cut_x:
        crop.append(f"{cut_x} px of width")
    if cut_y:
        crop.append(f"{cut_y} px of height")
    note = f"{image.width}x{image.height} scaled by {scale:.3g} to cover {width}x{height}"
    return fitted, note + (f", centre crop of {' and '.join(crop)}" if crop else "")
