"""Sequence recommenders and baselines. Every recommender follows one contract:
``fit(train: Sequences) -> self`` and ``score(histories: Sequences) -> float32 [n, n_items + 1]``
(column 0 is padding and scores -inf).

* ``baselines``: ``Popularity``, ``ItemTransitions`` (item-to-item co-occurrence of consecutive items).
* ``sasrec``, ``gru4rec`` (``GRU4Rec``, ``LSTMRec``), ``bert4rec``: plain ``nn.Module``s with a config
  dataclass; ``registry.MODELS`` names them, ``registry.build_model`` makes one.
* ``losses``: full-softmax cross-entropy, sampled softmax, BCE with one negative.
* ``neural.SequentialRecommender``: any registered model behind the fit / score contract, trained by
  ``shelfwise.training.loop.train``, saved in the one artifact format.
"""
