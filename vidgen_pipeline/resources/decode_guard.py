"""The VAE decode that retries alone, smaller, when it runs out of memory after all of a
clip's denoising (instead of the memory ladder redoing the whole clip offloaded)."""

from __future__ import annotations


def collect() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class OutOfMemoryInDecode(RuntimeError):
    """The decode alone cannot fit; the memory ladder takes it from here."""


def guard_decode(pipe, log=print) -> None:
    """Make an out-of-memory error in the VAE decode retry the decode alone, smaller, instead
    of failing the clip after all its denoising: a batch of frames (SVD, image VAEs) is
    decoded in halves, a video latent with VAE tiling. The wrapper is put on once per
    pipeline; ``log`` (the current step's) says when it steps in."""
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return
    vae._vidgen_decode_log = log
    if getattr(vae, "_vidgen_guarded", False):
        return
    original = vae.decode

    def decode(latents, *args, **kwargs):
        import torch

        try:
            return original(latents, *args, **kwargs)
        except torch.OutOfMemoryError:
            pass  # retried below, once the failed attempt's traceback is gone
        collect()
        return _decode_smaller(vae, decode, original, latents, args, kwargs)

    vae.decode = decode
    vae._vidgen_guarded = True


def _decode_smaller(vae, decode, original, latents, args, kwargs):
    """The decode of ``latents`` after an out-of-memory error: in halves, or tiled."""
    from diffusers.models.autoencoders.vae import DecoderOutput

    log = vae._vidgen_decode_log
    frames = latents.shape[0]
    if latents.ndim == 4 and frames > 1:
        half = frames // 2
        log(f"VAE decode of {frames} frames ran out of memory; decoding {half} at a time")
        parts = []
        for piece in (latents[:half], latents[half:]):
            extra = {**kwargs, "num_frames": len(piece)} if "num_frames" in kwargs else kwargs
            parts.append(decode(piece, *args, **{**extra, "return_dict": True}).sample)
        import torch

        sample = torch.cat(parts)
        return DecoderOutput(sample=sample) if kwargs.get("return_dict", True) else (sample,)
    if latents.ndim == 5 and hasattr(vae, "enable_tiling") and not getattr(vae, "use_tiling", True):
        log("VAE decode ran out of memory; decoding again with VAE tiling")
        vae.enable_tiling()
        return original(latents, *args, **kwargs)
    raise OutOfMemoryInDecode("the VAE decode ran out of memory at its smallest setting")
