"""TFDS builder package `savee` (`tfds new` layout); the builder is in savee_dataset_builder.py."""
