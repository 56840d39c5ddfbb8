from crossrank import FlagReranker

reranker = FlagReranker("embedded", use_fp16=True)  # or "BAAI/bge-reranker-v2-m3" where its weights are
score = reranker.compute_score([["what is panda?", "hi"], ["what is panda?", "The giant panda (Ailuropoda melanoleuca), sometimes called a panda bear or simply panda, is a bear species endemic to China."]])  # noqa: E501
print(score)
