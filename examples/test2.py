"""Seed demo 2: a bi-encoder's vector similarity beside the cross-encoder's judgement.

Query "如何缓解咖啡因引起的失眠？" with three documents, the Apple AI-chip keyword trap and the FSD V12.5
pair: the table shows the multilingual-e5-small cosine similarity, the reranker score and its logit,
timings and the dynamic threshold.

Run: .venv/bin/python examples/test2.py [MODEL]
"""

import sys

from crossrank.demo import similarity_demo

similarity_demo(sys.argv[1] if len(sys.argv) > 1 else "embedded")
