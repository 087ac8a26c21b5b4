"""The tiny tokenizers of the tiny pipelines: trained once here, committed, only loaded after.

Each lives under ``tokenizer_files/<name>/`` and loads with its transformers class:

| name | class | trained as | used by |
| --- | --- | --- | --- |
| ``clip`` | ``CLIPTokenizer`` | byte-level BPE, 1000 ids, CLIP's layout | SD, ModelScope, AnimateDiff |
| ``t5`` | ``T5Tokenizer`` (fast) | Unigram, 1000 ids, T5's layout (pad 0, eos 1, unk 2) | Wan (umT5), LTX-Video, CogVideoX |
| ``gemma3`` | ``GemmaTokenizer`` (fast) | BPE with byte fallback, Gemma's layout | LTX-2 |
| ``chat_llm`` | ``Qwen2Tokenizer`` (fast) | Qwen2 byte-level BPE + ChatML, see ``tiny_llm`` | tiny LLM, HunyuanVideo 1.5 |

HunyuanVideo 1.5's glyph tokenizer is ``ByT5Tokenizer()``: bytes, no files to train.

The trainers break ties between equally frequent pairs in no fixed order, so a rerun gives another
(equally valid) vocabulary: regenerate only on purpose (``python -m vidgen_pipeline.testing.tokenizers
NAME``), commit the files and update the ids pinned in ``test_tiny_models.py``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from vidgen_pipeline.testing import corpus

TOKENIZER_FILES = Path(__file__).resolve().parent / "tokenizer_files"

CLIP_VOCAB_SIZE = 1000  # 256 bytes + 256 word-final bytes + 486 merges + 2 special tokens
CLIP_MAX_LENGTH = 77
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"

T5_VOCAB_SIZE = 1000  # <pad> 0, </s> 1, <unk> 2, then 997 Unigram pieces; no sentinels
T5_MAX_LENGTH = 512

# Gemma's layout: these five first, Gemma 3's turn and image tokens, 256 byte-fallback tokens,
# then the merges' tokens.
GEMMA_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
GEMMA3_EXTRA = (
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)
GEMMA_VOCAB_SIZE = 1000
GEMMA_MAX_LENGTH = 1024


def tokenizer_dir(name: str) -> Path:
    """The committed folder of tokenizer ``name`` (``clip``, ``t5``, ``gemma3``, ``chat_llm``)."""
    path = TOKENIZER_FILES / name
    if not (path / "tokenizer_config.json").is_file():
        raise FileNotFoundError(
            f"{path} is missing; regenerate it with "
            f"`python -m vidgen_pipeline.testing.tokenizers {name}` and commit the files"
        )
    return path


def _check_size(tok, expected: int):
    assert len(tok) == expected, f"tokenizer has {len(tok)} tokens, expected {expected}"
    return tok


def load_clip_tokenizer():
    from transformers import CLIPTokenizer

    return _check_size(CLIPTokenizer.from_pretrained(str(tokenizer_dir("clip"))), CLIP_VOCAB_SIZE)


def load_t5_tokenizer():
    from transformers import T5TokenizerFast

    return _check_size(T5TokenizerFast.from_pretrained(str(tokenizer_dir("t5"))), T5_VOCAB_SIZE)


def load_gemma3_tokenizer():
    from transformers import GemmaTokenizerFast

    tok = GemmaTokenizerFast.from_pretrained(str(tokenizer_dir("gemma3")))
    return _check_size(tok, GEMMA_VOCAB_SIZE)


def load_qwen2_tokenizer():
    """The chat LLM's tokenizer (ChatML template) as ``Qwen2Tokenizer``, HunyuanVideo 1.5's class."""
    from transformers import Qwen2TokenizerFast

    return Qwen2TokenizerFast.from_pretrained(str(tokenizer_dir("chat_llm")))


def load_byt5_tokenizer():
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


# --------------------------------------------------------------------------------------------
# CLIP
# --------------------------------------------------------------------------------------------


def write_clip_tokenizer(dest: Path = TOKENIZER_FILES / "clip") -> Path:
    """Train the tiny CLIP BPE and save it as a ``CLIPTokenizer`` folder (run once, commit).

    The layout copies CLIP's: ids 0-255 are the byte-level characters, 256-511 the same with the
    ``</w>`` end-of-word suffix, then the merges in order, then ``<|startoftext|>`` and
    ``<|endoftext|>`` as the last two ids (998, 999).
    """
    from transformers import CLIPTokenizer

    alphabet = _bytes_to_unicode()
    n_merges = CLIP_VOCAB_SIZE - 2 * len(alphabet) - 2
    merges = _train_clip_merges(alphabet)
    if len(merges) < n_merges:
        raise RuntimeError(f"corpus too small: {len(merges)} merges, need {n_merges}")
    merges = merges[:n_merges]

    tokens = list(alphabet) + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    tokens += [BOS, EOS]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == CLIP_VOCAB_SIZE, "duplicate tokens in the vocabulary"

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (tmp / "merges.txt").write_text(
            "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
        )
        tok = CLIPTokenizer(
            vocab=str(tmp / "vocab.json"),
            merges=str(tmp / "merges.txt"),
            model_max_length=CLIP_MAX_LENGTH,
        )
        _fresh(dest)
        tok.save_pretrained(str(dest))
        # Keep vocab.json/merges.txt too: the slow CLIPTokenizer of transformers 4.x needs them.
        for name in ("vocab.json", "merges.txt"):
            if not (dest / name).exists():
                shutil.copy(tmp / name, dest / name)
    return dest


def _train_clip_merges(alphabet: list[str]) -> list[tuple[str, str]]:
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    trainer_tok = Tokenizer(BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    # Same normalizer and pre-tokenizer as transformers' CLIPTokenizer.
    trainer_tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(
                    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
                ),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = BpeTrainer(
        vocab_size=4 * CLIP_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=alphabet,
        end_of_word_suffix="</w>",
        special_tokens=[],
    )
    trainer_tok.train_from_iterator(corpus.PROMPTS.splitlines(), trainer=trainer)
    return [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
        for m in json.loads(trainer_tok.to_str())["model"]["merges"]
    ]


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP byte -> printable unicode table, in CLIP's vocabulary order."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


# --------------------------------------------------------------------------------------------
# T5 / umT5 (Unigram) and Gemma 3 (BPE with byte fallback)
# --------------------------------------------------------------------------------------------


def write_t5_tokenizer(dest: Path = TOKENIZER_FILES / "t5") -> Path:
    """Train a Unigram tokenizer in T5's layout and save it as a fast ``T5Tokenizer`` folder.

    ``<pad>`` 0, ``</s>`` 1 (appended to every sequence), ``<unk>`` 2, then the pieces with their
    scores; Metaspace ("▁") word boundaries, no lower-casing, no sentinel (``<extra_id_N>``) tokens.
    Chinese runs without spaces become single "words" the Unigram model segments into pieces.
    """
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.trainers import UnigramTrainer
    from transformers import T5TokenizerFast

    trainer_tok = Tokenizer(Unigram())
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    trainer = UnigramTrainer(
        vocab_size=T5_VOCAB_SIZE,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        max_piece_length=8,
        show_progress=False,
    )
    trainer_tok.train_from_iterator(_both_corpora(), trainer=trainer)
    vocab = [tuple(piece) for piece in json.loads(trainer_tok.to_str())["model"]["vocab"]]
    if len(vocab) != T5_VOCAB_SIZE or [p for p, _ in vocab[:3]] != ["<pad>", "</s>", "<unk>"]:
        raise RuntimeError(f"unexpected Unigram vocabulary: {len(vocab)} pieces, {vocab[:3]}")
    tok = T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=T5_MAX_LENGTH)
    _fresh(dest)
    tok.save_pretrained(str(dest))
    _set_tokenizer_class(dest, "T5TokenizerFast")
    return dest


def write_gemma3_tokenizer(dest: Path = TOKENIZER_FILES / "gemma3") -> Path:
    """Train a BPE with byte fallback in Gemma 3's layout and save it as a fast
    ``GemmaTokenizer`` folder.

    ``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2 (prepended to every sequence), ``<unk>`` 3, ``<mask>``
    4, Gemma 3's turn and image tokens, ``<0x00>``..``<0xFF>`` (characters the merges do not
    cover fall back to their UTF-8 bytes), then the merges' tokens. Spaces are "▁"; left padding.
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import GemmaTokenizerFast

    specials = [*GEMMA_SPECIALS, *GEMMA3_EXTRA] + [f"<0x{i:02X}>" for i in range(256)]
    trainer_tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True))
    trainer_tok.normalizer = normalizers.Replace(" ", "▁")
    # Train within words (a merge never crosses a space), as SentencePiece does.
    trainer_tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trainer = BpeTrainer(
        vocab_size=GEMMA_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=specials,
        show_progress=False,
    )
    trainer_tok.train_from_iterator(_both_corpora(), trainer=trainer)
    model = json.loads(trainer_tok.to_str())["model"]
    if len(model["vocab"]) != GEMMA_VOCAB_SIZE:
        raise RuntimeError(f"corpus too small: {len(model['vocab'])} tokens")
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = GemmaTokenizerFast(
        vocab=model["vocab"],
        merges=merges,
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=GEMMA_MAX_LENGTH,
        additional_special_tokens=list(GEMMA3_EXTRA),
    )
    _fresh(dest)
    tok.save_pretrained(str(dest))
    _set_tokenizer_class(dest, "GemmaTokenizerFast", add_bos_token=True, add_eos_token=False)
    return dest


def _both_corpora() -> list[str]:
    return (corpus.PROMPTS + corpus.CHAT).strip().splitlines()


def _fresh(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)


def _set_tokenizer_class(dest: Path, class_name: str, **extra) -> None:
    """Name the fast class in ``tokenizer_config.json``: transformers 5 writes the bare name
    (its only class), which in 4.x is the SentencePiece one that needs files we do not have."""
    config_path = dest / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.update(tokenizer_class=class_name, **extra)
    config_path.write_text(
        json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )


WRITERS = {
    "clip": write_clip_tokenizer,
    "t5": write_t5_tokenizer,
    "gemma3": write_gemma3_tokenizer,
}  # the chat LLM's: python -m vidgen_pipeline.testing.tiny_llm

if __name__ == "__main__":  # regenerate one committed tokenizer: python -m ... NAME
    if len(sys.argv) != 2 or sys.argv[1] not in WRITERS:
        sys.exit(f"usage: python -m vidgen_pipeline.testing.tokenizers {{{','.join(WRITERS)}}}")
    print(WRITERS[sys.argv[1]]())
