"""Dispatch optimizer: the LP (model), solving, baselines, plans and their exports, rolling horizon (mpc)."""
