"""Flax modules: the two encoders (TIM-Net, MLP, linear), their layers and the heads."""
