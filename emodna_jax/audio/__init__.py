"""Audio front end and data: files -> features -> TFDS corpora -> label tables -> batches."""
