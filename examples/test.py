"""Seed demo 1: FlagEmbedding-style scoring with crossrank's drop-in FlagReranker.

Run: .venv/bin/python examples/test.py   (uses the offline embedded model)
"""

from crossrank import FlagReranker

reranker = FlagReranker("embedded", use_fp16=True)  # use_fp16 is ignored on CPU, as in FlagEmbedding
pairs = [
    ["what is panda?", "hi"],
    [
        "what is panda?",
        "The giant panda is a bear species endemic to China, known for its black-and-white coat.",
    ],
]
print(reranker.compute_score(pairs))  # raw logits
print(reranker.compute_score(pairs, normalize=True))  # sigmoid scores in [0, 1]
