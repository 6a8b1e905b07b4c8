"""emodna-jax: a JAX/Flax functional reimplementation of Emo-DNA for cross-corpus SER."""
