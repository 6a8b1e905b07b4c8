"""Evaluation: exact metrics, embeddings, label-free diagnostics and validators, plots, reports."""
