"""The `tiny-causal-lm` step: CREATE a small causal language model from a configuration (random weights)
and a word-level vocabulary built from the dataset's words. Nothing is downloaded: it gives tests, the
example pipeline and benchmarks a real Hugging Face model folder (config, safetensors weights, tokenizer)
that `AutoModelForCausalLM.from_pretrained` loads."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from mlops_nocode.library.lm_common import PROMPT, Example, LMError, need, preload, read_rows, seed_everything
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

preload()  # once per run's fork server, not once per step (lm_common.preload)

ARCHITECTURES = ("llama", "gpt2")
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
_WORDS = re.compile(r"\w+|[^\w\s]+")  # what the Whitespace pre-tokenizer splits text into


def vocabulary(rows: list[Example], most: int) -> list[str]:
    """The special tokens, then the template's words and the rows' words, most frequent first."""
    counts: Counter[str] = Counter(_WORDS.findall(PROMPT.format(instruction="", input=" Input :")))
    for r in rows:
        counts.update(_WORDS.findall(f"{r.prompt} {r.answer}"))
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if w not in SPECIALS]
    return [*SPECIALS, *words[: max(0, most - len(SPECIALS))]]


def build_tokenizer(words: list[str]) -> Any:
    """A fast word-level tokenizer over `words` (unknown words become <unk>)."""
    tokenizers = need("tokenizers")
    transformers = need("transformers")
    vocab = {w: i for i, w in enumerate(words)}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    core.decoder = tokenizers.decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def build_config(
    architecture: str,
    vocab_size: int,
    layers: int,
    hidden_size: int,
    heads: int,
    max_length: int,
    init_std: float = 0.02,
) -> Any:
    """A transformers configuration of the chosen architecture (ids of the special tokens as above).
    `init_std` is the weights' initial spread: tiny models need more than the usual 0.02, or their tied
    embeddings keep every next-token distribution near uniform whatever the adapters learn."""
    transformers = need("transformers")
    ids = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3, "initializer_range": init_std}
    if hidden_size % heads:
        raise LMError(f"hidden_size {hidden_size} is not a multiple of heads {heads}: change one of them")
    if architecture == "llama":
        return transformers.LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 8 // 3 // 8 * 8 or 8,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=max_length,
            tie_word_embeddings=True,
            **ids,
        )
    if architecture == "gpt2":
        return transformers.GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden_size,
            n_layer=layers,
            n_head=heads,
            n_positions=max_length,
            **ids,
        )
    raise LMError(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")


def create_model(
    rows: list[Example],
    folder: Path,
    *,
    architecture: str = "llama",
    layers: int = 2,
    hidden_size: int = 64,
    heads: int = 4,
    max_length: int = 256,
    vocab_size: int = 0,
    init_std: float = 0.2,
    seed: int = 42,
) -> tuple[Any, Any]:
    """Build the tokenizer and a randomly initialised model, save both into `folder`; (model, tokenizer).
    `vocab_size` 0 sizes the embedding to the vocabulary; more pads it (to reach a parameter count)."""
    transformers = need("transformers")
    seed_everything(seed)
    words = vocabulary(rows, vocab_size or 1_000_000)
    tok = build_tokenizer(words)
    size = max(vocab_size, len(words))
    config = build_config(architecture, size, layers, hidden_size, heads, max_length, init_std)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 3
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return model, tok


def tiny_causal_lm(
    *,
    dataset: str,
    heldout: str | None = None,
    architecture: str = "llama",
    layers: int = 2,
    hidden_size: int = 64,
    heads: int = 4,
    max_length: int = 256,
    vocab_size: int = 0,
    init_std: float = 0.2,
    seed: int = 42,
    ctx: StepContext,
) -> dict[str, Any]:
    """Create a small random causal LM whose vocabulary holds the words of `dataset` (and `heldout`)."""
    rows = read_rows(dataset) + (read_rows(heldout) if heldout else [])
    folder = ctx.output_dir / "model"
    model, tok = create_model(
        rows,
        folder,
        architecture=architecture,
        layers=layers,
        hidden_size=hidden_size,
        heads=heads,
        max_length=max_length,
        vocab_size=vocab_size,
        init_std=init_std,
        seed=seed,
    )
    params = sum(p.numel() for p in model.parameters())
    ctx.log.info(
        "%s model: %d layers, hidden %d, %d parameters, %d words",
        architecture,
        layers,
        hidden_size,
        params,
        len(tok),
    )
    metrics = report_metrics(ctx, {"parameters": params, "vocabulary": len(tok), "layers": layers})
    return {"model": str(folder), "metrics": metrics}
