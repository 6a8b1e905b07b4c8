"""The method's pure math: losses, prototypes, thresholds, pseudo-labels and the method table."""
