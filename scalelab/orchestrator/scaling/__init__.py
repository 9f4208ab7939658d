"""Scaling laws: fit L(D) and L(N, D) to runs, predict, plan compute, plot, query."""
