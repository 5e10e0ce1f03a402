"""The evaluate stage's library: what a run reports about its trained model (`report`: the tables printed)."""
