"""TFDS builder package `ravdess` (`tfds new` layout); the builder is in ravdess_dataset_builder.py."""
