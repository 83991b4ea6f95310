"""Product search: keyword (tantivy), semantic (faiss over the text encoder), hybrid fusion,
a learned fusion, learned synonyms, query suggestions and spelling correction. The cross-encoder reranker is in
:mod:`shelfwise.search.rerank` and the all-in-one :class:`shelfwise.search.engine.SearchEngine`
in :mod:`shelfwise.search.engine` (both import torch).

Imports of tantivy / faiss / torch happen inside the classes, so importing this package is cheap.
"""

from shelfwise.search.hybrid import FUSIONS, HybridSearch, reciprocal_rank_fusion, weighted_score_fusion
from shelfwise.search.keyword import SORTS, Filters, Hit, KeywordIndex, SearchPage
from shelfwise.search.learned_fusion import LearnedFusion, fit_learned_fusion
from shelfwise.search.semantic import SemanticSearch, VectorIndex, item_texts
from shelfwise.search.suggest import QuerySuggester, SpellingCorrector
from shelfwise.search.synonyms import LearnedSynonyms

__all__ = [
    "FUSIONS",
    "SORTS",
    "Filters",
    "Hit",
    "HybridSearch",
    "KeywordIndex",
    "LearnedFusion",
    "LearnedSynonyms",
    "QuerySuggester",
    "SearchPage",
    "SemanticSearch",
    "SpellingCorrector",
    "VectorIndex",
    "fit_learned_fusion",
    "item_texts",
    "reciprocal_rank_fusion",
    "weighted_score_fusion",
]
