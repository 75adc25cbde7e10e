"""Pruning of PyTorch sources before export: structured channel pruning (torch-pruning) with recovery by
distillation or a user hook, and unstructured magnitude pruning. See prune_model.py for the order."""
