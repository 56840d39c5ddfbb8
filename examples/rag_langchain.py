"""LangChain retrieval with crossrank: BM25 first stage → crossrank rerank → top 5, offline.

The corpus is the first documents of ArguAna (``../shared/data/arguana``, read in place); the reranker is
the embedded model, in process, or a running ``crossrank serve`` with ``--url``.

Needs: pip install 'crossrank[langchain]' langchain-community rank-bm25   (make setup installs them)
Run:   python examples/rag_langchain.py [--query TEXT] [--docs 200] [--url http://127.0.0.1:8080 --api-key K]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_community.retrievers import BM25Retriever
from langchain_core.documents import Document

from crossrank.integrations.langchain import CrossrankRerank

DATA = Path(os.environ.get("CROSSRANK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def arguana_documents(count: int) -> list[Document]:
    with gzip.open(DATA / "arguana" / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for _, line in zip(range(count), handle, strict=False)]
    return [
        Document(page_content=r["text"], metadata={"id": r["_id"], "title": r.get("title", "")}) for r in rows
    ]


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", default="Does eating meat harm the environment?")
    parser.add_argument("--docs", type=positive, default=200, help="ArguAna documents to index")
    parser.add_argument("--candidates", type=positive, default=20, help="BM25 candidates reranked")
    parser.add_argument("--url", default=None, help="score through this crossrank serve instead")
    parser.add_argument("--api-key", default=os.environ.get("CROSSRANK_API_KEY"))
    args = parser.parse_args()

    bm25 = BM25Retriever.from_documents(arguana_documents(args.docs), k=args.candidates)
    if args.url:
        rerank = CrossrankRerank(url=args.url, api_key=args.api_key, top_n=5)
    else:
        rerank = CrossrankRerank(reranker="embedded", top_n=5)
    retriever = ContextualCompressionRetriever(base_compressor=rerank, base_retriever=bm25)

    first_stage = [d.metadata["id"] for d in bm25.invoke(args.query)]
    print(f"query: {args.query}")
    for rank, doc in enumerate(retriever.invoke(args.query), 1):
        window = doc.metadata["crossrank_window"]
        best = doc.page_content[window["start"] : window["end"]]
        bm25_rank = first_stage.index(doc.metadata["id"]) + 1
        print(
            f"{rank}. {doc.metadata['relevance_score']:.3f}  {doc.metadata['id']}  "
            f"(BM25 #{bm25_rank}, window {window['index'] + 1}/{window['count']})"
        )
        print(f"   {best[:160]!r}")


if __name__ == "__main__":
    main()
