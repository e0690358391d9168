"""Cards of the public datasets jaxrec reads: what each holds, its licence and citation.

`list_datasets` returns the cards (``jaxrec data list`` prints `format_cards`). Each
card names its ``configs/data`` option, the folder under ``paths.data_dir`` holding the
publisher's files under their published names, and its implicit-feedback convention.
Nothing is downloaded: put the files in place (the card's ``source``).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Card:
    """One dataset: ``data=<config>`` reads ``<data_dir>/<folder>/<files>``."""

    name: str
    config: str
    folder: str
    files: str
    size: str
    licence: str
    citation: str
    holds: str
    implicit: str
    source: str


_CARDS = (
    Card("MovieLens", "ml-latest-small, ml-100k, ml-1m, ml-20m, ml-25m", "<variant>",
         "ratings.csv / u.data / ratings.dat, movies, tags", "100k-25M ratings",
         "GroupLens usage licence (research, no redistribution)",
         "Harper & Konstan, The MovieLens Datasets, ACM TiiS 2015",
         "0.5-5 star ratings with timestamps; genres, year, tags; ml-100k/1m user attributes",
         "explicit; data=ml-latest-small-implicit: rating >= 4 positives",
         "grouplens.org/datasets/movielens (downloaded, sha256-checked)"),
    Card("Last.fm HetRec 2011", "lastfm-hetrec", "hetrec2011-lastfm-2k", "user_artists.dat",
         "92,834 user-artist pairs; 1,892 users, 17,632 artists", "HetRec 2011 (research use)",
         "Cantador, Brusilovsky & Kuflik, HetRec 2011 workshop, RecSys 2011",
         "play count per user-artist pair (tab-separated, header); no timestamps",
         "play count is the rating; implicit=true binarises (every listened artist a positive)",
         "grouplens.org/datasets/hetrec-2011"),
    Card("goodbooks-10k", "goodbooks", "goodbooks-10k", "ratings.csv", "5,976,479 ratings; "
         "53,424 users, 10,000 books", "CC BY-SA 4.0",
         "Zajac, goodbooks-10k, github.com/zygmuntz/goodbooks-10k, 2017",
         "1-5 star ratings (user_id,book_id,rating); no timestamps",
         "explicit; implicit studies take rating >= 4", "github.com/zygmuntz/goodbooks-10k"),
    Card("Amazon reviews 2014", "amazon2014", "amazon2014",
         "reviews_<Category>_5.json.gz (core=5) or reviews_<Category>.json.gz (core=0)",
         "per category, 10k-22M reviews", "research use (McAuley lab terms)",
         "McAuley, Targett, Shi & van den Hengel, Image-based Recommendations on Styles and "
         "Substitutes, SIGIR 2015", "1-5 star reviews with Unix-second times (JSON lines)",
         "explicit; implicit studies keep all reviews (implicit=true) or rating >= 4",
         "jmcauley.ucsd.edu/data/amazon"),
    Card("Amazon reviews 2018", "amazon2018", "amazon2018",
         "<Category>_5.json.gz (core=5) or <Category>.json.gz (core=0)",
         "per category, 10k-51M reviews", "research use (McAuley lab terms)",
         "Ni, Li & McAuley, Justifying Recommendations using Distantly-Labeled Reviews and "
         "Fine-Grained Aspects, EMNLP 2019", "1-5 star reviews with Unix-second times",
         "explicit; all reviews as positives (implicit=true) or rating >= 4",
         "nijianmo.github.io/amazon"),
    Card("Amazon reviews 2023", "amazon2023", "amazon2023", "<Category>.jsonl(.gz)",
         "571M reviews over 33 categories", "research use (McAuley lab terms)",
         "Hou, Li, He, Yan, Chen & McAuley, Bridging Language and Items for Retrieval and "
         "Recommendation, 2024", "1-5 star reviews (user_id, parent_asin), millisecond times",
         "explicit; all reviews as positives (implicit=true) or rating >= 4",
         "amazon-reviews-2023.github.io"),
    Card("Book-Crossing", "book-crossing", "book-crossing", "BX-Book-Ratings.csv",
         "1,149,780 ratings; 105,283 users, 340,556 books", "free for research (Ziegler)",
         "Ziegler, McNee, Konstan & Lausen, Improving Recommendation Lists Through Topic "
         "Diversification, WWW 2005",
         "ratings 1-10 and 0 = implicit interaction (';'-separated, quoted, latin-1)",
         "all rows as positives (implicit=true), or rating_threshold=1 for explicit only",
         "www2.informatik.uni-freiburg.de/~cziegler/BX"),
    Card("Steam", "steam", "steam", "steam_reviews.json.gz (version=reviews) or "
         "australian_user_reviews.json.gz (version=australian)",
         "7.8M reviews; 2.6M users, 15k games (v2)", "research use (McAuley lab terms)",
         "Kang & McAuley, Self-Attentive Sequential Recommendation, ICDM 2018",
         "reviews with dates (Python-literal lines)", "implicit: every review a positive",
         "cseweb.ucsd.edu/~jmcauley/datasets.html#steam_data"),
    Card("Gowalla", "gowalla", "gowalla", "loc-gowalla_totalCheckins.txt.gz",
         "6,442,890 check-ins; 107,092 users, 1.28M places", "SNAP (research use)",
         "Cho, Myers & Leskovec, Friendship and Mobility, KDD 2011",
         "check-ins with ISO times and coordinates (tab-separated, no header)",
         "implicit: every check-in a positive (dedup keeps one per place)",
         "snap.stanford.edu/data/loc-gowalla.html"),
    Card("Yelp", "yelp", "yelp", "yelp_academic_dataset_review.json (or review.json)",
         "~7M reviews; ~2M users, 150k businesses", "Yelp Dataset License (non-commercial)",
         "Yelp Open Dataset, yelp.com/dataset",
         "1-5 star reviews with 'YYYY-MM-DD HH:MM:SS' dates (JSON lines)",
         "explicit; implicit studies keep all reviews or stars >= 4", "yelp.com/dataset"),
    Card("LightGCN / NGCF splits", "adjacency", "<any dir>", "train.txt, valid.txt, test.txt",
         "Gowalla 1.03M, Yelp2018 1.56M, Amazon-Book 2.98M interactions",
         "as the papers' repositories",
         "He et al., LightGCN, SIGIR 2020; Wang et al., NGCF, SIGIR 2019",
         "one line per user 'user item item ...', the papers' fixed split",
         "implicit; split kept (split.method=predefined)",
         "github.com/gusye1234/LightGCN-PyTorch (data/)"),
    Card("RecBole atomic files", "recbole", "<any dir>", "NAME.inter or NAME.{train,valid,"
         "test}.inter (+ NAME.item)", "any", "as the dataset's",
         "Zhao et al., RecBole, CIKM 2021", "RecBole's 'field:type' tab-separated files",
         "as the dataset's", "recbole.io (RecSysDatasets)"),
)


def list_datasets() -> list[Card]:
    """Every dataset card, in display order."""
    return list(_CARDS)


def format_cards(cards: list[Card] | None = None) -> str:
    """The cards as text: one block per dataset (``jaxrec data list``)."""
    blocks = []
    for card in cards if cards is not None else list_datasets():
        fields = [(f.name, getattr(card, f.name)) for f in dataclasses.fields(card)[1:]]
        blocks.append("\n".join([card.name] + [f"  {k:<9} {v}" for k, v in fields]))
    return "\n\n".join(blocks)
