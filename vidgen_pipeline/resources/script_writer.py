"""The storyboard writer resource: a local chat LLM through transformers, or the rules.

The rule-based writer is the default without an LLM, and the fallback when the LLM's answer
cannot be used after a few tries; every fallback is logged and written into the
storyboard (``writer: rules (llm output invalid: ...)``), which an asset check flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import Field

from vidgen_pipeline.core.models import ModelChoiceError, looks_like_hub_id
from vidgen_pipeline.core.requests import PromptRequest
from vidgen_pipeline.core.script_llm import (
    ChatFn,
    Messages,
    StoryboardParseError,
    extension_messages,
    parse_extension,
    parse_storyboard,
    parse_translation,
    storyboard_messages,
    translation_messages,
    with_narration,
    write_with_llm,
)
from vidgen_pipeline.core.storyboard import (
    Storyboard,
    detect_language,
    write_storyboard,
)
from vidgen_pipeline.core.weights import WeightsError, first_line, resolve_weights
from vidgen_pipeline.resources import runtime
from vidgen_pipeline.resources.runtime import DiffusersSettings

# name -> (hub id, needs trust_remote_code)
SCRIPT_MODELS: dict[str, tuple[str | None, bool]] = {
    "rules": (None, False),
    "qwen2.5-1.5b": ("Qwen/Qwen2.5-1.5B-Instruct", False),
    "qwen2.5-7b": ("Qwen/Qwen2.5-7B-Instruct", False),
    "chatglm3-6b": ("THUDM/chatglm3-6b", True),
}


class ScriptWriter(DiffusersSettings):
    """Writes the storyboard of a prompt (and English prompts for CLIP-based models)."""

    model: str = Field(
        default="rules",
        description="rules, qwen2.5-1.5b, qwen2.5-7b, chatglm3-6b, a hub id or a local folder",
    )
    attempts: int = Field(default=3, description="LLM tries before falling back to the rules")
    max_new_tokens: int = Field(default=1024)
    temperature: float = Field(default=0.7, description="0: greedy decoding")

    def check(self, name: str) -> str:
        """Validate a script model setting without loading it; return the name."""
        name = (name or "rules").strip()
        if name == "rules":
            return name
        self._resolve(name)
        return name

    def _resolve(self, name: str):
        hub_id, needs_remote_code = SCRIPT_MODELS.get(name, (None, False))
        if name not in SCRIPT_MODELS and not (
            looks_like_hub_id(name) or "/" in name or name.startswith(".")
        ):
            raise ModelChoiceError(
                f"unknown script model {name!r}; known: {', '.join(SCRIPT_MODELS)}, a hub id or a folder"
            )
        if needs_remote_code and not self.trust_remote_code:
            raise ModelChoiceError(
                f"script model {name!r} runs code from its repository; opt in with "
                "trust_remote_code: true on the script_writer resource"
            )
        try:
            return resolve_weights(
                "script",
                name,
                hub_id or (name if looks_like_hub_id(name) else None),
                name if name in SCRIPT_MODELS else None,
                self.allow_download,
                self.allow_unsafe_weights,
                layout="transformers",
            )
        except WeightsError as exc:
            raise ModelChoiceError(str(exc)) from None

    def chat_model(self, name: str, log=print) -> ChatFn:
        """The chat function of model ``name``, loaded once per process."""
        weights = self._resolve(name)
        device = runtime.resolve_device(self.device)
        dtype, _ = runtime.resolve_dtype(self.dtype, device)
        tokenizer, model = runtime.load_chat_model(
            weights, device, dtype, self.trust_remote_code, log
        )

        def chat(messages: Messages, seed: int) -> str:
            import torch

            torch.manual_seed(seed)
            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            ).to(model.device)
            sample = self.temperature > 0
            output = model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=sample,
                temperature=self.temperature if sample else None,
                top_p=0.9 if sample else None,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
            return tokenizer.decode(
                output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )

        return chat

    def write(self, request: PromptRequest, log: Callable[[str], None] = print) -> Storyboard:
        """The storyboard of ``request``: by the LLM when one is set and answers usably."""
        name = (request.settings.script_model or self.model or "rules").strip()
        narrate = bool(request.settings.narration)
        rules = write_storyboard(
            request.text, request.settings.duration_s, request.settings.scenes, narrate
        )
        if name == "rules":
            return rules
        language = detect_language(request.text)
        # The rule-based board is the fallback, and it already holds the clamped request.
        duration, count, notes = rules.target_duration_s, len(rules.scenes), rules.notes
        messages = storyboard_messages(request.text, language, duration, count, narrate)
        import torch

        out_of_memory = None
        try:
            board, failures = write_with_llm(
                self.chat_model(name, log),
                messages,
                lambda reply: parse_storyboard(
                    reply, language, duration, count, writer=f"llm:{name}"
                ),
                attempts=max(1, self.attempts),
                seed=request.settings.seed or 0,
            )
        except torch.OutOfMemoryError as exc:
            out_of_memory = first_line(exc)  # freed below, once the traceback is gone
        if out_of_memory is not None:
            return self._out_of_memory(rules, name, out_of_memory, log)
        for failure in failures:
            log(f"LLM storyboard {failure}")
        if board is None:
            reason = failures[-1].split(": ", 1)[-1]
            log(f"falling back to the rule-based writer: the LLM's output was invalid ({reason})")
            return rules.model_copy(
                update={
                    "writer": f"rules (llm output invalid: {reason})",
                    "notes": rules.notes + failures,
                }
            )
        return with_narration(board, narrate).model_copy(update={"notes": notes + failures})

    @staticmethod
    def _out_of_memory(rules: Storyboard, name: str, error: str, log) -> Storyboard:
        """The LLM did not fit (loading or writing): free it and let the rules write."""
        runtime.release_all()
        reason = f"llm out of memory: {error}"
        log(f"falling back to the rule-based writer: {name} ran out of memory ({reason})")
        return rules.model_copy(
            update={"writer": f"rules ({reason})", "notes": [*rules.notes, reason]}
        )

    def translate(
        self, descriptions: Sequence[str], request: PromptRequest, log=print
    ) -> list[str] | None:
        """English versions of ``descriptions`` by the LLM, or None (no LLM, or unusable)."""
        return self._ask_for_list(
            translation_messages(descriptions),
            lambda reply: parse_translation(reply, len(descriptions)),
            request,
            "translation",
            log,
        )

    def extend(
        self,
        descriptions: Sequence[str],
        language: str,
        max_words: int,
        request: PromptRequest,
        log=print,
    ) -> list[str] | None:
        """Each scene as a richer shot description by the LLM (for text encoders that read
        long prompts: T5, umT5), or None (no LLM, or unusable)."""
        return self._ask_for_list(
            extension_messages(descriptions, language, max_words),
            lambda reply: parse_extension(reply, len(descriptions)),
            request,
            "shot descriptions",
            log,
        )

    def _ask_for_list(self, messages, parse, request: PromptRequest, what: str, log):
        """The LLM's answer to ``messages`` parsed by ``parse``, after up to ``attempts``
        tries; None without an LLM, when every answer is unusable, or out of memory."""
        name = (request.settings.script_model or self.model or "rules").strip()
        if name == "rules":
            return None
        import torch

        try:
            chat = self.chat_model(name, log)
            for attempt in range(max(1, self.attempts)):
                reply = chat(messages, (request.settings.seed or 0) + attempt)
                try:
                    return parse(reply)
                except StoryboardParseError as exc:
                    log(f"LLM {what} attempt {attempt + 1}: {exc}")
        except torch.OutOfMemoryError as exc:
            out_of_memory = first_line(exc)
        else:
            return None
        runtime.release_all()  # the traceback that held the model is gone now
        log(f"LLM {what} skipped: {name} ran out of memory ({out_of_memory})")
        return None
