"""Tiny random-weight LTX-2 pipeline: video with synchronized stereo audio, from text or image.

Components as ``Lightricks/LTX-2`` and diffusers' tests (``tests/pipelines/ltx2/``):

- ``text_encoder``: ``Gemma3ForConditionalGeneration`` (a 2-layer text model plus a tiny SigLIP
  tower the pipeline never feeds), ``tokenizer``: the committed ``gemma3`` tokenizer as
  ``GemmaTokenizerFast`` (left padding, ``<bos>`` first, 1024 tokens: the pipeline pads every
  prompt to ``max_sequence_length`` 1024); every layer's hidden states, stacked, go through
  ``connectors`` (``LTX2TextConnectors``) to the video and the audio branch.
- ``vae``: ``AutoencoderKLLTX2Video`` with the real compression (32x spatial, 8x temporal);
  ``audio_vae``: ``AutoencoderKLLTX2Audio`` (stereo mel spectrograms at 16 kHz / hop 160: 100 mel
  frames a second, 4x compressed in time and in mel bins); ``vocoder``: ``LTX2Vocoder`` whose
  upsampling (6*5*2*2*2 = 240) turns 100 mel frames a second into 24,000 samples a second, its
  ``output_sampling_rate``, as the real one.
- ``transformer``: ``LTX2VideoTransformer3DModel`` (video and audio streams with cross-attention
  between them, 2 layers); ``scheduler``: ``FlowMatchEulerDiscreteScheduler``.
- ``processor``, ``prompt_enhancer``, ``duration_head``: None (optional; without a duration head
  ``num_frames`` defaults to 121).
"""

from __future__ import annotations

from pathlib import Path

from vidgen_pipeline.testing.layout import Precision, save_pipeline
from vidgen_pipeline.testing.tokenizers import GEMMA3_EXTRA, load_gemma3_tokenizer

TEXT_DIM = 32  # Gemma 3 hidden size (3840 in Gemma-3-12B)
TEXT_LAYERS = 2
LATENT_CHANNELS = 4
AUDIO_LATENT_CHANNELS = 2
MEL_BINS = 16  # 64 real; the audio VAE compresses them 4x
SAMPLE_RATE = 16000  # the audio VAE's mel rate: SAMPLE_RATE / HOP_LENGTH mel frames a second
HOP_LENGTH = 160
OUTPUT_SAMPLING_RATE = 24000  # the vocoder's: 100 mel frames/s x 240
# Packed audio latent width: latent channels x mel bins / 4. The audio VAE's latent statistics
# have ``base_channels`` entries, so its base width must be this (128 = 8 x 64 / 4 in LTX-2).
AUDIO_DIM = AUDIO_LATENT_CHANNELS * MEL_BINS // 4


def _gemma3_text_encoder(tokenizer):
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    image, boi, eoi = (
        tokenizer.convert_tokens_to_ids(t)
        for t in ("<image_soft_token>", "<start_of_image>", "<end_of_image>")
    )
    assert {"<image_soft_token>", "<start_of_image>"} <= set(GEMMA3_EXTRA)
    torch.manual_seed(0)
    config = Gemma3Config(
        text_config=Gemma3TextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TEXT_DIM,
            intermediate_size=64,
            num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=tokenizer.model_max_length,
            sliding_window=512,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=SiglipVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=4,
        ),
        mm_tokens_per_image=4,
        image_token_index=image,
        boi_token_index=boi,
        eoi_token_index=eoi,
    )
    return Gemma3ForConditionalGeneration(config).eval()


def _connectors():
    import torch
    from diffusers.pipelines.ltx2 import LTX2TextConnectors

    torch.manual_seed(0)
    return LTX2TextConnectors(
        caption_channels=TEXT_DIM,
        text_proj_in_factor=TEXT_LAYERS + 1,  # every layer's hidden states and the embeddings'
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    ).eval()


def _transformer():
    import torch
    from diffusers import LTX2VideoTransformer3DModel

    torch.manual_seed(0)
    return LTX2VideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        vae_scale_factors=(8, 32, 32),
        audio_in_channels=AUDIO_DIM,
        audio_out_channels=AUDIO_DIM,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        audio_sampling_rate=SAMPLE_RATE,
        audio_hop_length=HOP_LENGTH,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=TEXT_DIM,
        rope_double_precision=False,
        rope_type="split",
    ).eval()


def _vae():
    import torch
    from diffusers import AutoencoderKLLTX2Video

    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(False, False, False),
        upsample_factor=(1, 1, 1),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        # patch 4 x three 2x spatial steps; three 2x temporal steps (the formula's default
        # counts every block as both)
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    return vae.eval()


def _audio_vae():
    import torch
    from diffusers import AutoencoderKLLTX2Audio

    torch.manual_seed(0)
    return AutoencoderKLLTX2Audio(
        base_channels=AUDIO_DIM,
        output_channels=2,
        ch_mult=(1, 2, 4),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=AUDIO_LATENT_CHANNELS,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=SAMPLE_RATE,
        mel_hop_length=HOP_LENGTH,
        is_causal=True,
        mel_bins=MEL_BINS,
    ).eval()


def _vocoder():
    import torch
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    torch.manual_seed(0)
    return LTX2Vocoder(
        in_channels=2 * MEL_BINS,  # stereo mel spectrogram in
        hidden_channels=64,
        out_channels=2,  # stereo waveform out
        upsample_kernel_sizes=[16, 15, 8, 4, 4],  # the real ones: exactly 240 samples a mel frame
        upsample_factors=[6, 5, 2, 2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=OUTPUT_SAMPLING_RATE,
    ).eval()


def save_tiny_ltx2(path: Path, precision: Precision = "fp32") -> Path:
    """LTX-2: ``LTX2Pipeline`` in ``model_index.json``; the same folder loads as
    ``LTX2ImageToVideoPipeline`` (identical components; ``image=`` becomes the first frame; it
    re-encodes the image as H.264 first, which needs PyAV (``av``), unless ``image_crf=0``).

    Rules: height and width multiples of 32 (``check_inputs`` raises), at least 64 (a 1x1 latent
    fails in the decoder's reflect padding); frames 8k+1: latent frames are
    ``(num_frames - 1) // 8 + 1``, another count decodes to the 8k+1 below it.

    Render: ``pipe("a fox", height=64, width=64, num_frames=9, frame_rate=24.0,
    num_inference_steps=2, output_type="np", generator=...)`` -> ``.frames`` (1, 9, 64, 64, 3)
    and ``.audio``: a float32 ``torch.Tensor`` (batch, 2, samples) in [-1, 1] (tanh), stereo, at
    ``pipe.vocoder.config.output_sampling_rate`` (24000) samples a second, whatever the
    ``output_type`` (``"latent"``: the audio latents instead). Its length follows the requested
    ``num_frames / frame_rate``, not the frames made: ``round(seconds * 25)`` latent audio frames,
    ``4 * (latent - 1) + 1`` mel frames (causal), 240 samples each: 9 frames at 24 fps give
    7920 samples (0.33 s for 0.375 s of video), 17 give 16560; 12 frames give 9 video frames
    but 10800 samples. The default guidance (CFG 3.0, spatio-temporal guidance at block 28,
    modality guidance) runs as is: block 28 does not exist in the 2-block tiny transformer.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2Pipeline

    tokenizer = load_gemma3_tokenizer()
    pipe = LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_vae(),
        audio_vae=_audio_vae(),
        text_encoder=_gemma3_text_encoder(tokenizer),
        tokenizer=tokenizer,
        connectors=_connectors(),
        transformer=_transformer(),
        vocoder=_vocoder(),
        processor=None,
        prompt_enhancer=None,
        duration_head=None,
    )
    return save_pipeline(pipe, path, precision, fast_tokenizers=("tokenizer",))
