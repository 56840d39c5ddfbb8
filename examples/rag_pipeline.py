"""Retrieve → rerank → answer in a few lines (offline: BM25 + e5-small first stage, embedded reranker).

Run:  python examples/rag_pipeline.py  [--llm-base-url http://host/v1 --llm-model NAME]
"""

from __future__ import annotations

import argparse
import tempfile

from crossrank.answer import build_messages, chat
from crossrank.pipeline import Pipeline
from crossrank.retrieval import EmbeddedIndex, IndexConfig
from crossrank.retrieval.sources import chunk_documents

DOCS = [
    {
        "id": "caffeine",
        "title": "Caffeine",
        "text": "Caffeine is a stimulant found in coffee, tea and cocoa.",
    },
    {"id": "paris", "title": "Paris", "text": "Paris is the capital and largest city of France."},
    {"id": "beijing", "title": "北京", "text": "北京是中华人民共和国的首都。"},
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm-base-url", default=None)
    parser.add_argument("--llm-model", default="gpt-4o-mini")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        index = EmbeddedIndex.create(folder, IndexConfig(embedder="e5-small"))
        index.add(chunk_documents(DOCS))
        pipeline = Pipeline(index, reranker="embedded", k=10, top_n=2)
        hits = pipeline.search("中国的首都是哪里？")
        for hit in hits:
            print(
                hit.rank,
                hit.chunk.id,
                f"first stage #{hit.first_stage_rank}",
                f"rerank {hit.rerank_score:.3f}",
            )
        messages = build_messages("中国的首都是哪里？", hits)
        if args.llm_base_url:
            print(chat(messages, base_url=args.llm_base_url, model=args.llm_model))
        else:
            print("No LLM configured (pass --llm-base-url); the prompt it would be sent:\n")
            print(messages[1]["content"])


if __name__ == "__main__":
    main()
