"""The OpenAI-compatible catalog: providers that speak OpenAI Chat Completions, one data row each.

Each row is a :class:`~asgi_llmroute.providers.kinds.ProviderKind` of wire format ``openai`` with
``Authorization: Bearer`` credentials: its default base URL, key variable (None for local servers
that take no key), the operations it serves, the top-level request fields it is known to refuse or
ignore (for all its models, or for some: :class:`~asgi_llmroute.providers.kinds.ModelParams`), and
whether its answers carry ``reasoning_content``. docs/providers.md lists them, with the reference
each came from, and says how to add one. The facts come from each provider's own API reference.
"""

from __future__ import annotations

from .kinds import (
    AUDIO,
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    IMAGES,
    MODERATIONS,
    RERANK,
    RESPONSES,
    ModelParams,
    ProviderKind,
    register_kind,
)

__all__ = ["CATALOG"]


def _row(
    name: str,
    title: str,
    base_url: str,
    key_env: str | None,
    capabilities: frozenset[str],
    *,
    aliases: tuple[str, ...] = (),
    refused: frozenset[str] = frozenset(),
    ignored: frozenset[str] = frozenset(),
    models: tuple[ModelParams, ...] = (),
    max_tokens_name: str | None = None,
    reasoning_content: bool = False,
    key_required: bool = True,
    notes: str = "",
) -> ProviderKind:
    return ProviderKind(
        name,
        "openai",
        title=title,
        aliases=aliases,
        default_base_url=base_url,
        key_env=key_env,
        key_required=key_required and key_env is not None,
        capabilities=capabilities,
        refused_params=refused,
        ignored_params=ignored,
        model_params=models,
        max_tokens_name=max_tokens_name,
        reasoning_content=reasoning_content,
        notes=notes,
    )


_CHAT = frozenset({CHAT})

CATALOG: tuple[ProviderKind, ...] = (
    _row(
        "groq",
        "Groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        frozenset({CHAT, RESPONSES, AUDIO}),
        refused=frozenset({"logprobs", "logit_bias", "top_logprobs"}),
        notes="`n` must be 1; reasoning comes as `reasoning`",
    ),
    _row(
        "mistral",
        "Mistral AI",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        frozenset({CHAT, EMBEDDINGS, MODERATIONS}),
        # Its API schema forbids fields it does not define (422 "extra_forbidden"); these OpenAI ones
        # are not in it (its seed is `random_seed`).
        refused=frozenset({"logit_bias", "logprobs", "top_logprobs", "seed", "user", "service_tier", "store"}),
        max_tokens_name="max_tokens",
    ),
    _row(
        "deepseek",
        "DeepSeek",
        "https://api.deepseek.com",
        "DEEPSEEK_API_KEY",
        _CHAT,
        models=(
            # The reasoning model: logprobs answer 400, the sampling fields are accepted and ignored.
            ModelParams(
                ("deepseek-reasoner*",),
                refused=frozenset({"logprobs", "top_logprobs"}),
                ignored=frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty"}),
            ),
        ),
        max_tokens_name="max_tokens",
        reasoning_content=True,
        notes="thinking models return `reasoning_content`",
    ),
    _row(
        "together",
        "Together AI",
        "https://api.together.ai/v1",
        "TOGETHER_API_KEY",
        frozenset({CHAT, EMBEDDINGS, COMPLETIONS, IMAGES, RERANK, AUDIO}),
        aliases=("together_ai", "togetherai"),
    ),
    _row(
        "fireworks",
        "Fireworks AI",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_API_KEY",
        frozenset({CHAT, EMBEDDINGS, COMPLETIONS}),
        aliases=("fireworks_ai",),
        notes="model ids are `accounts/fireworks/models/...`",
    ),
    _row(
        "openrouter",
        "OpenRouter",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        frozenset({CHAT, COMPLETIONS}),
        notes="reasoning comes as `reasoning`; errors after the 200 arrive as chunks",
    ),
    _row(
        "xai",
        "xAI",
        "https://api.x.ai/v1",
        "XAI_API_KEY",
        frozenset({CHAT, RESPONSES, IMAGES}),
        models=(
            ModelParams(("grok-*non-reasoning*",)),  # not reasoning models: the rules below do not apply
            # Reasoning models answer 400 for penalties and stop; these grok-4 ones for reasoning_effort too.
            ModelParams(
                ("grok-4", "grok-4-0709", "grok-4-latest", "grok-4-fast-reasoning", "grok-4-fast"),
                refused=frozenset({"presence_penalty", "frequency_penalty", "stop", "reasoning_effort"}),
            ),
            ModelParams(
                ("grok-4*", "grok-3-mini*", "grok-code-fast*"),
                refused=frozenset({"presence_penalty", "frequency_penalty", "stop"}),
            ),
            ModelParams(("grok-3", "grok-3-fast*"), refused=frozenset({"reasoning_effort"})),
        ),
        reasoning_content=True,
    ),
    _row(
        "perplexity",
        "Perplexity",
        "https://api.perplexity.ai",
        "PERPLEXITY_API_KEY",
        _CHAT,
        aliases=("perplexityai",),
        max_tokens_name="max_tokens",
        notes="answers add `citations` / `search_results`",
    ),
    _row(
        "cerebras",
        "Cerebras",
        "https://api.cerebras.ai/v1",
        "CEREBRAS_API_KEY",
        frozenset({CHAT, COMPLETIONS}),
        refused=frozenset(
            {"frequency_penalty", "logit_bias", "presence_penalty", "parallel_tool_calls", "service_tier"}
        ),
    ),
    _row(
        "deepinfra",
        "DeepInfra",
        "https://api.deepinfra.com/v1/openai",
        "DEEPINFRA_API_KEY",
        frozenset({CHAT, EMBEDDINGS, COMPLETIONS}),
    ),
    _row(
        "nvidia",
        "NVIDIA NIM",
        "https://integrate.api.nvidia.com/v1",
        "NVIDIA_API_KEY",
        frozenset({CHAT, EMBEDDINGS, COMPLETIONS}),
        aliases=("nvidia_nim", "nim"),
        notes='self-hosted NIM: `base_url = "http://host:8000/v1"`',
    ),
    _row(
        "ollama",
        "Ollama",
        "http://localhost:11434/v1",
        None,
        frozenset({CHAT, EMBEDDINGS, COMPLETIONS}),
        aliases=("ollama_chat",),
        # Its OpenAI compatibility list leaves these out: accepted, and without effect.
        ignored=frozenset({"tool_choice", "logit_bias", "user", "n"}),
        max_tokens_name="max_tokens",
        notes='local, no key; Ollama\'s cloud: `base_url = "https://ollama.com/v1"` and a key',
    ),
    _row(
        "vllm",
        "vLLM",
        "http://localhost:8000/v1",
        "VLLM_API_KEY",
        frozenset({CHAT, EMBEDDINGS, COMPLETIONS, AUDIO, RERANK}),
        aliases=("hosted_vllm",),
        key_required=False,
        reasoning_content=True,
        notes="a key only if the server was started with `--api-key`",
    ),
    _row(
        "lmstudio",
        "LM Studio",
        "http://localhost:1234/v1",
        None,
        frozenset({CHAT, EMBEDDINGS, COMPLETIONS}),
        aliases=("lm_studio",),
        notes="local, no key",
    ),
)

for _kind in CATALOG:
    register_kind(_kind)
