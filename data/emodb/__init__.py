"""TFDS builder package `emodb` (`tfds new` layout); the builder is in emodb_dataset_builder.py."""
