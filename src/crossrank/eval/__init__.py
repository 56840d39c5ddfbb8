"""Evaluation on real data sets: loaders (BEIR, WikiQA, CMRC 2018), ranx metrics, the first stage vs
reranked harness and its plot."""

from .datasets import FORMATS, EvalSet, load_dataset
from .harness import run_eval

__all__ = ["FORMATS", "EvalSet", "load_dataset", "run_eval"]
