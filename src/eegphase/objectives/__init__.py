"""eegphase.objectives: training losses and evaluation metrics, written against plain tensors.

masked_modeling (LaBraM), jepa (SignalJEPA), infonce + movie_pairs (movie contrastive), regression +
multitask (NaN-masked targets and their weighted sum), metrics (NRMSE, challenge score, balanced accuracy),
reference (band-power ridge: the score a simple model reaches on a prepared cache).
"""
