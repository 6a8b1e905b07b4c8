"""TFDS builder package `emovo` (`tfds new` layout); the builder is in emovo_dataset_builder.py."""
