"""TFDS builder package `casia` (`tfds new` layout); the builder is in casia_dataset_builder.py."""
