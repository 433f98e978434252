"""The latent-recovery study on the hypersphere (docs/ground_truth.md), where the optimum is
known: the data process and the encoders trained on it, the study's grids and their reports,
and the finite-batch optimum of each loss with no encoder in the way.

Modules, and which way the imports go (each imports only modules above it in this list):

- ``data``: latents, positives, the mixing, the held-out samples;
- ``measures``: R², Procrustes, canonical correlations and the representation metrics;
- ``training``: loss specs, the stacked encoders, :func:`training.train_group`;
- ``convergence``: :func:`convergence.train_to_convergence` (a criterion, resumable groups);
- ``study`` / ``converged_study``: the grids, their groups and rows;
- ``optimum``: embeddings optimized directly against the simplex and the cross-polytope;
- ``rows``: reading rows (selections, per-seed values, their text forms);
- ``plots``: every figure of the studies;
- ``report`` / ``converged_report`` / ``optimum_study``: results.md, curves and figures.
"""
