"""The one training loop (``loop.train``) and what it needs: batching of sequences, crash-safe
checkpoints, torchrun / DDP helpers, and the next-item task for the sequence recommenders."""
