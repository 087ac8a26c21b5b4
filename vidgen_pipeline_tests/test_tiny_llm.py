"""The tiny offline chat LLM: hub-like Qwen2 layout, safetensors only, ChatML, greedy and fast."""

from __future__ import annotations

import json

import pytest
import torch

from vidgen_pipeline.testing import tiny_llm

MESSAGES = {
    "zh": [
        {"role": "system", "content": "你是一个写短视频脚本的助手。"},
        {"role": "user", "content": "写一个故事"},
    ],
    "en": [
        {"role": "system", "content": "You write short video scripts."},
        {"role": "user", "content": "Write a story about a red fox in the snow."},
    ],
}


@pytest.fixture(scope="module")
def llm_path(tmp_path_factory):
    return tiny_llm.save_tiny_chat_llm(tmp_path_factory.mktemp("tiny_llm") / "llm")


@pytest.fixture(scope="module")
def loaded(llm_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llm_path)
    model = AutoModelForCausalLM.from_pretrained(llm_path, dtype=torch.float32)
    return tokenizer, model.eval()


def test_folder_layout_is_safetensors_only(llm_path):
    names = {p.name for p in llm_path.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= names
    assert "tokenizer_config.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".ckpt"))]

    config = json.loads((llm_path / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["vocab_size"] == tiny_llm.VOCAB_SIZE
    gen = json.loads((llm_path / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [1999, 1997]  # <|im_end|>, <|endoftext|>


def test_committed_tokenizer_ids_are_pinned():
    tok = tiny_llm.load_llm_tokenizer()
    assert len(tok) == tiny_llm.VOCAB_SIZE
    assert tok.convert_tokens_to_ids(list(tiny_llm.SPECIAL_TOKENS)) == [1997, 1998, 1999]
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 1999)
    assert (tok.pad_token, tok.pad_token_id) == ("<|endoftext|>", 1997)
    assert tok.bos_token is None
    text = "A red fox 一只红色的狐狸\n"
    assert tok.decode(tok(text).input_ids) == text


def test_chat_template_is_chatml(loaded):
    tokenizer, _ = loaded
    text = tokenizer.apply_chat_template(MESSAGES["zh"], add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\n你是一个写短视频脚本的助手。<|im_end|>\n"
        "<|im_start|>user\n写一个故事<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # No system message: Qwen2's default one is added; no generation prompt without the flag.
    text = tokenizer.apply_chat_template(MESSAGES["en"][1:], tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWrite a story about a red fox in the snow.<|im_end|>\n"
    )


@pytest.mark.parametrize("lang", sorted(MESSAGES))
def test_greedy_generation_is_deterministic(loaded, lang, one_thread):
    tokenizer, model = loaded
    # return_dict=True gives a BatchEncoding on transformers 4.x and 5.x alike (5.x defaults to
    # it; 4.x returns a bare tensor of ids otherwise).
    inputs = tokenizer.apply_chat_template(
        MESSAGES[lang], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    n_prompt = inputs["input_ids"].shape[1]
    assert inputs["input_ids"][0, 0].item() == 1998  # <|im_start|>

    outputs = [
        model.generate(**inputs, max_new_tokens=32, do_sample=False)[0, n_prompt:] for _ in range(2)
    ]
    assert 0 < outputs[0].shape[0] <= 32
    assert torch.equal(outputs[0], outputs[1])

    text = tokenizer.decode(outputs[0], skip_special_tokens=True)
    assert isinstance(text, str)
