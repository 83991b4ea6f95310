"""The learned re-ranking of the blend's top candidates (recommenders/rerank.py)."""

import numpy as np
import pytest
import torch

from shelfwise.datasets.sequences import Sequences, leave_one_out
from shelfwise.recommenders.baselines import ItemTransitions
from shelfwise.recommenders.neural import SequentialRecommender
from shelfwise.recommenders.rerank import FEATURES, CandidateRanker, Candidates, candidate_features, fit_if_better, reranked
from shelfwise.training.loop import TrainConfig

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def lists(n=400, k=20, seed=0) -> tuple[Candidates, np.ndarray]:
    """Candidates 1..k in a random order per case, blended scores falling; the target is the candidate whose
    feature 5 is largest."""
    rng = np.random.default_rng(seed)
    items = torch.from_numpy(np.stack([rng.permutation(k) + 1 for _ in range(n)]))
    features = torch.from_numpy(rng.normal(size=(n, k, FEATURES)).astype(np.float32))
    targets = torch.gather(items, 1, features[:, :, 5].argmax(1, keepdim=True))[:, 0].numpy()
    blended = torch.linspace(0.1, 0.01, k).expand(n, k).clone()
    return Candidates(items, blended, features, torch.ones(n, k, dtype=torch.bool)), targets


def test_ranker_is_kept_when_it_beats_the_blend_order_on_held_out_cases():
    candidates, targets = lists()
    ranker, values = fit_if_better(candidates, targets)
    assert ranker is not None
    assert values["reranked"]["hr@10"] > 0.9 > 0.7 > values["blend"]["hr@10"]  # random order: ~10 of 20
    new, new_targets = lists(seed=1)
    with torch.no_grad():
        order = torch.argsort(-new.rescored(ranker(new.features)), dim=1)
    assert (torch.gather(new.items, 1, order)[:, 0].numpy() == new_targets).mean() > 0.5  # cases it never saw (random: 0.05)


def test_a_ranker_needs_a_target_among_the_warm_candidates():
    candidates, targets = lists()
    cold = candidates._replace(warm=torch.zeros_like(candidates.warm))
    with pytest.raises(ValueError, match="warm candidates"):
        CandidateRanker().fit(cold, cold.items == torch.from_numpy(targets)[:, None])
    assert fit_if_better(cold, targets) == (None, {})


def test_ranker_is_dropped_when_it_does_not_beat_the_blend():
    candidates, _ = lists()
    ranker, values = fit_if_better(candidates, candidates.items[:, 0].numpy())  # the blend's first is always right
    assert ranker is None and values["blend"]["ndcg@10"] == 1.0
    ranker, values = fit_if_better(candidates, np.zeros(len(candidates.items), dtype=np.int64))  # no target in the lists
    assert ranker is None and values == {}


def test_warm_candidates_share_their_mass_in_the_rankers_order_and_cold_ones_keep_their_score():
    ranker = CandidateRanker()
    for p in ranker.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        ranker.mlp[-1].bias.zero_()
    features = torch.zeros(1, 3, FEATURES)
    candidates = Candidates(torch.tensor([[1, 3, 4]]), torch.tensor([[0.5, 0.2, 0.1]]), features, torch.tensor([[True, False, True]]))
    blended = torch.tensor([[float("-inf"), 0.5, 0.15, 0.2, 0.1]])
    out = reranked(blended, candidates, ranker)  # a ranker that cannot tell the warm ones apart: an even split
    assert torch.allclose(out[0, 1:], torch.tensor([0.3, 0.15, 0.2, 0.3]))
    assert torch.isinf(out[0, 0]) and torch.isclose(out[0, 1:].sum(), blended[0, 1:].sum())  # the mass is kept


def test_candidate_features_leave_history_items_out_and_are_finite():
    seqs = Sequences.from_lists([[1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 1]] * 5, n_items=5)
    transitions = ItemTransitions().fit(seqs)
    histories = Sequences.from_lists([[1, 2], [4]], n_items=5)
    network = torch.randn(2, 6)
    network[:, 0] = float("-inf")
    blended, candidates = candidate_features(network, transitions, histories, 0.3, torch.randn(6, 4), mask_history=True)
    assert candidates.items.shape == (2, 5) and candidates.features.shape == (2, 5, FEATURES)
    assert torch.isfinite(candidates.features).all()
    assert set(candidates.items[0, :3].tolist()) == {3, 4, 5}  # 1 and 2 are the history (last), 0 the padding
    assert candidates.items[0, 0].item() == 3  # followed 2 in every sequence
    assert torch.equal(candidates.blended, torch.gather(blended, 1, candidates.items))  # unmasked: kept where not re-ranked
    assert not candidates.warm[0, 3:].any()  # the history items, masked, are not re-ranked


def test_recommender_with_a_ranker_saves_and_loads_the_same_scores(tmp_path):
    from tests.test_recommenders import cyclic_sequences

    split = leave_one_out(cyclic_sequences())
    rec = SequentialRecommender("sasrec", {"hidden": 8, "heads": 1, "layers": 1, "inner": 8, "max_len": 6},
                                train_config=TrainConfig(epochs=1, batch_size=64, warmup_steps=1, progress=False),
                                transitions_weight=0.3).fit(split.train, split.valid_history, split.valid_target)
    _, candidates = rec._candidates(split.valid_history)
    ranker = CandidateRanker().fit(candidates, candidates.items == torch.from_numpy(split.valid_target)[:, None], epochs=2)
    rec.ranker_ = None
    blend_only = rec.score(split.test_history)
    rec.ranker_ = ranker
    scores = rec.score(split.test_history)
    assert not np.allclose(scores, blend_only) and np.allclose(scores.sum(1), blend_only.sum(1), equal_nan=True)
    again = SequentialRecommender.load(rec.save(tmp_path / "reranked").path)
    assert again.ranker_ is not None
    assert np.allclose(again.score(split.test_history), scores, equal_nan=True)


def test_the_api_serves_the_re_ranked_order(tmp_path):
    from shelfwise.serving.models import load_service, shop_sequences
    from shelfwise.store import Store
    from tests.serving_helpers import fill_shop, make_settings

    settings = make_settings(tmp_path)
    store = Store.open(settings)
    try:
        fill_shop(store)
        seqs = shop_sequences(store)
        rec = SequentialRecommender("sasrec", {"hidden": 8, "heads": 1, "layers": 1, "inner": 8, "max_len": 6},
                                    train_config=TrainConfig(epochs=1, batch_size=64, warmup_steps=1, progress=False),
                                    transitions_weight=0.3).fit(seqs)
        # Every session runs pan -> knife -> garden, and fit held the garden items out: learn on pan -> knife.
        _, candidates = rec._candidates(seqs.truncate(2))
        rec.ranker_ = CandidateRanker().fit(candidates, candidates.items == torch.from_numpy(seqs.last(2))[:, None], epochs=2)
        torch.nn.init.normal_(rec.ranker_.mlp[-1].weight, std=5.0)  # an order of its own, unlike the blend's
        rec.save(settings.artifacts / "sasrec")
        service = load_service(settings, store, "sasrec")
        assert service.model.ranker_ is not None
        one = Sequences.from_lists([[int(np.flatnonzero(rec.item_ids_ == "I03")[0])]], n_items=len(rec.item_ids_) - 1)
        model_row = rec.score(one)[0]
        served, personal = service.score(service.indexes(["I03"]))  # the API's scores, by catalogue index
        assert personal
        by_id = {str(service.item_ids[i]): served[i] for i in range(1, len(served))}
        assert np.allclose([by_id[str(x)] for x in rec.item_ids_[1:]], model_row[1:])  # the re-ranked scores, mapped by id
        rec.ranker_ = None
        assert not np.allclose(rec.score(one)[0][1:], model_row[1:])  # ... which are not the blend's
    finally:
        store.close()
