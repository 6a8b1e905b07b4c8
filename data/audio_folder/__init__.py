"""TFDS builder package `audio_folder` (`tfds new` layout); the builder is in audio_folder_dataset_builder.py."""
