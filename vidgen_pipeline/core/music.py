"""The music bed (``--music``, Launchpad ``music``, a dataset's ``music`` column).

Like the user's image (``core/images.py``): checked when the request is registered (the file
exists, lies under an allowed folder when it came from the UI or a dataset, and ffmpeg
decodes a frame of audio from it), then copied into the storage's ``inputs/`` under its
digest; the request keeps that reference (``inputs/<sha256>.<ext>``), so a changed file is a
changed request and any machine that shares the storage finds it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from upath import UPath

from vidgen_pipeline.core.audio import MIX_RATE, AudioError, decode_audio, gain_to, run_ffmpeg
from vidgen_pipeline.core.images import (
    INPUTS,
    stored_input_path,
    under_roots,
    with_stored_input,
)
from vidgen_pipeline.core.models import ModelChoiceError
from vidgen_pipeline.core.storage import atomic_write_bytes, default_storage_path, local_copy

MAX_MUSIC_BYTES = 200 * 1024 * 1024
EXTENSIONS = ("mp3", "wav", "flac", "ogg", "oga", "opus", "m4a", "aac", "mka", "webm", "mp4")
_REFERENCE = re.compile(rf"^{INPUTS}/[0-9a-f]{{64}}\.({'|'.join(EXTENSIONS)})$")
MUSIC_LUFS = -26.0  # a bed ~10 LU under speech at -16: the words stay intelligible
FADE_IN_S = 1.0
FADE_OUT_S = 2.0
FADE_SHARE = 0.1  # each fade at most a tenth of the video


def check_music(path: str | Path, roots: Sequence[Path] | None = None) -> Path:
    """The resolved path of a usable music file; one ``ModelChoiceError`` line otherwise.
    ``roots``: the folders it may lie under (None: anywhere, for the CLI)."""
    resolved = Path(path).expanduser().resolve()
    if not under_roots(resolved, roots):
        allowed = ", ".join(str(Path(r)) for r in roots or ()) or "none configured"
        raise ModelChoiceError(
            f"music {path}: only files under the allowed folders are read ({allowed}); put it "
            "in VIDGEN_HOME/inputs"
        )
    if not resolved.is_file():
        raise ModelChoiceError(f"music {path}: no such file")
    if resolved.stat().st_size > MAX_MUSIC_BYTES:
        raise ModelChoiceError(f"music {path}: over {MAX_MUSIC_BYTES // 2**20} MiB")
    try:  # one decoded frame of its first audio stream
        run_ffmpeg(["-i", str(resolved), "-map", "0:a:0", "-frames:a", "1", "-f", "null", "-"])
    except AudioError as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise ModelChoiceError(f"music {path}: not audio ffmpeg can read ({reason})") from None
    return resolved


def store_music(path: str | Path, roots: Sequence[Path] | None = None, base: str = "") -> str:
    """Check the file (``check_music``), copy it into the storage's ``inputs/`` under its
    digest (once), and return the reference the request keeps."""
    source = check_music(path, roots)
    data = source.read_bytes()
    suffix = source.suffix.lower().lstrip(".")
    extension = suffix if suffix in EXTENSIONS else "mka"  # ffmpeg probes the content anyway
    reference = f"{INPUTS}/{hashlib.sha256(data).hexdigest()}.{extension}"
    target = UPath(base or default_storage_path()) / reference
    if not target.exists():
        atomic_write_bytes(target, data)
    return reference


def with_stored_music(request, roots: Sequence[Path] | None = None, relative_to=None):
    """``request`` with its music (a path) stored and replaced by the reference."""
    return with_stored_input(request, "music", store_music, is_music_reference, roots, relative_to)


def is_music_reference(value: str) -> bool:
    return bool(_REFERENCE.match(value))


def stored_music(reference: str, base: str = "") -> Path:
    """A local path to the stored music of a request; one line when it is not a reference
    into ``inputs/`` or is gone."""
    path = stored_input_path(reference, is_music_reference, "music", base)
    if not path.exists():
        raise ModelChoiceError(f"music {reference}: gone from {path.parent}")
    return local_copy(path)


def music_bed(path: Path, seconds: float, rate: int = MIX_RATE) -> np.ndarray:
    """The music looped or cut to ``seconds``, at ``MUSIC_LUFS``, faded in and out (each fade
    at most a tenth of the video): stereo float32 at ``rate``."""
    bed = gain_to(decode_audio(path, rate, 2, seconds), MUSIC_LUFS, rate)
    count = len(bed)
    fade_in = round(min(FADE_IN_S, FADE_SHARE * seconds) * rate)
    fade_out = round(min(FADE_OUT_S, FADE_SHARE * seconds) * rate)
    ramp = np.ones(count, np.float32)
    ramp[:fade_in] = np.linspace(0.0, 1.0, fade_in, endpoint=False)
    if fade_out:
        ramp[count - fade_out :] = np.linspace(1.0, 0.0, fade_out)
    return bed * ramp[:, None]
