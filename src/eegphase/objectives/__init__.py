"""eegphase.objectives: training losses and evaluation metrics, written against plain tensors.

masked_modeling (LaBraM), infonce + movie_pairs (movie contrastive), regression + multitask (NaN-masked
targets and the auxiliary heads' weighted losses), metrics (NRMSE, challenge score, balanced accuracy),
reference (band-power ridge: the score a simple model reaches on a prepared cache). SignalJEPA's loss lives
with its model (models.signal_jepa.SignalJEPAPretrainer).
"""
