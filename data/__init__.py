"""TFDS dataset builders, one package per corpus in the `tfds new` layout.

Each `data/<name>/<name>_dataset_builder.py` defines `class Builder`; `emodna_jax.audio.corpora` imports
them as `data.<name>.<name>_dataset_builder`. From the repository root, `python -m data.tfds_cli
build data/<name> --manual_dir=... --data_dir=DIR --config=mfcc39` builds one into DIR
(data/tfds_cli.py is the `tfds` CLI, runnable without the apache-beam and mlcroissant packages that
the plain `tfds` command of tensorflow-datasets 4.9.10 needs at start-up).
"""
