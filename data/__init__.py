"""TFDS dataset builders, one package per corpus in the `tfds new` layout.

Each `data/<name>/<name>_dataset_builder.py` defines `class Builder`; `emodna_jax.corpora` imports
them as `data.<name>.<name>_dataset_builder`, and `tfds build data/<name> --manual_dir=...` works
from the repository root.
"""
