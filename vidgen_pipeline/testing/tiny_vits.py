"""Tiny random-weight VITS (MMS-TTS's architecture) for the narrator: a ``VitsModel`` from a
``VitsConfig`` the size of transformers' own VITS tests, with a ``VitsTokenizer`` made here
from a character vocabulary (as MMS-TTS's ``vocab.json``), saved as safetensors in a folder
laid out like ``facebook/mms-tts-eng``. It speaks noise, at the real 16 kHz, with durations
that follow the text's length: what the narration's timing and mixing need."""

from __future__ import annotations

import json
from pathlib import Path

# MMS-TTS English's vocabulary is its lower-case letters, a few marks and the pad/blank "_"
# (id 0): the tokenizer drops characters it does not know.
VOCAB = "_ abcdefghijklmnopqrstuvwxyz'-.,!?"


def save_tiny_vits(path: Path) -> Path:
    """A tiny VITS text-to-speech folder at ``path`` (config, safetensors, tokenizer)."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab_file = path / "vocab.json"
    vocab_file.write_text(json.dumps({ch: i for i, ch in enumerate(VOCAB)}), encoding="utf-8")
    tokenizer = VitsTokenizer(str(vocab_file), add_blank=True, normalize=True, phonemize=False)
    config = VitsConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        ffn_dim=32,
        flow_size=16,
        spectrogram_bins=16,
        upsample_initial_channel=16,
        upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1,
        duration_predictor_num_flows=1,
        duration_predictor_filter_channels=16,
        depth_separable_num_layers=1,
        sampling_rate=16_000,
        # Whole seconds of speech for a short line: ~0.1 s a character at this rate.
        speaking_rate=0.5,
    )
    torch.manual_seed(0)
    model = VitsModel(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
