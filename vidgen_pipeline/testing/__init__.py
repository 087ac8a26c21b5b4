"""Tiny random-weight models, built offline from configs, for tests and the benchmark.

One builder per model family, each ``save_tiny_*(path, precision="fp32") -> path`` writing a
folder laid out like a hub repo that plain ``DiffusionPipeline.from_pretrained(path,
use_safetensors=True)`` loads (see ``layout`` for ``precision`` and hub-cache snapshots):

| module | families |
| --- | --- |
| ``tiny_unet_models`` | SVD, SD 1.5 (keyframes), ModelScope T2V, AnimateDiff, a replacement UNet |
| ``tiny_wan`` | Wan 2.1 T2V / I2V, Wan 2.2 TI2V-5B, Wan 2.2 T2V / I2V A14B |
| ``tiny_ltx`` | LTX-Video (text and image, one folder) |
| ``tiny_cogvideox`` | CogVideoX T2V, CogVideoX I2V (separate weights) |
| ``tiny_hunyuan15`` | HunyuanVideo 1.5 T2V, I2V |
| ``tiny_ltx2`` | LTX-2 (video with audio; text and image, one folder) |
| ``tiny_llm`` | a Qwen2-style chat LLM (transformers layout) for the script writer |

``tokenizers`` holds the committed tokenizers they use, ``encoders`` the tiny transformers text
and image encoders. ``registry.TINY_VIDEO_MODELS`` says, per video builder, which pipeline
classes load its folder and a call that renders it; each builder's docstring has the family's
rules. Nothing here imports torch, diffusers or transformers until a builder runs.
"""
