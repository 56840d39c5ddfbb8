"""``crossrank ask``: retrieve, rerank, and answer with an OpenAI-compatible LLM, citing the chunks."""

from __future__ import annotations

import argparse
import os
import sys

from .search_cmd import add_pipeline_args, build_pipeline

HELP = """Answer a question from an index: the best --top-n chunks (after reranking) are sent as numbered
context to an OpenAI-compatible chat endpoint (--llm-base-url, --llm-model; API key from
CROSSRANK_LLM_API_KEY or OPENAI_API_KEY). Without an endpoint, the assembled prompt is printed."""


def register(sub) -> None:
    parser = sub.add_parser("ask", help="answer a question from an index with an LLM", description=HELP)
    parser.add_argument("question", help="the question")
    add_pipeline_args(parser)
    parser.add_argument(
        "--llm-base-url", default=os.environ.get("CROSSRANK_LLM_BASE_URL"), help="e.g. http://host/v1"
    )
    parser.add_argument(
        "--llm-model", default=os.environ.get("CROSSRANK_LLM_MODEL", "gpt-4o-mini"), help="model name"
    )
    parser.add_argument("--llm-timeout", type=seconds, default=120.0, help="seconds to wait for the answer")
    parser.set_defaults(func=run)


def seconds(value: str) -> float:
    """``--llm-timeout``: a positive number of seconds."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return number


def run(args: argparse.Namespace) -> int:
    from ..answer import api_key_from_env, build_messages, chat, citations

    hits = build_pipeline(args).search(args.question)
    messages = build_messages(args.question, hits)
    sources = "".join(f"[{c.number}] {c.chunk_id}  {c.source}\n" for c in citations(hits))
    if not args.llm_base_url:
        sys.stdout.write(
            "No LLM is configured (pass --llm-base-url or set CROSSRANK_LLM_BASE_URL); "
            "this is the prompt that would be sent:\n\n"
        )
        for message in messages:
            sys.stdout.write(f"--- {message['role']} ---\n{message['content']}\n\n")
        return 0
    answer = chat(
        messages,
        base_url=args.llm_base_url,
        model=args.llm_model,
        api_key=api_key_from_env(),
        timeout=args.llm_timeout,
    )
    sys.stdout.write(answer.strip() + "\n\nSources:\n" + sources)
    return 0
