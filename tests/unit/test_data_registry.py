"""Registry datasets on small files written in each publisher's exact format, and the cards."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from jaxrec.data.datasets.amazon import load_amazon
from jaxrec.data.datasets.bookcrossing import load_bookcrossing
from jaxrec.data.datasets.goodbooks import load_goodbooks
from jaxrec.data.datasets.gowalla import load_gowalla
from jaxrec.data.datasets.lastfm import load_lastfm_hetrec
from jaxrec.data.datasets.steam import load_steam
from jaxrec.data.datasets.yelp import load_yelp
from jaxrec.data.interactions import DataError
from jaxrec.data.registry import format_cards, list_datasets
from jaxrec.paths import CONFIG_DIR


def folder(tmp_path, name) -> Path:
    (tmp_path / name).mkdir(parents=True, exist_ok=True)
    return tmp_path / name


def rows(inter):
    return sorted(zip(inter.user_ids[inter.users].tolist(), inter.item_ids[inter.items].tolist(),
                      inter.ratings.tolist(), inter.timestamps.tolist(), strict=True))


def test_lastfm_hetrec(tmp_path):
    (folder(tmp_path, "hetrec2011-lastfm-2k") / "user_artists.dat").write_text(
        "userID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t11690\r\n3\t51\t228\r\n")
    inter = load_lastfm_hetrec(str(tmp_path), cache_dir=str(tmp_path / "c"))
    assert rows(inter) == [(2, 51, 13883.0, 0), (2, 52, 11690.0, 0), (3, 51, 228.0, 0)]


def test_goodbooks(tmp_path):
    (folder(tmp_path, "goodbooks-10k") / "ratings.csv").write_text(
        "user_id,book_id,rating\n1,258,5\n2,4081,4\n2,260,5\n")
    inter = load_goodbooks(str(tmp_path))
    assert rows(inter) == [(1, 258, 5.0, 0), (2, 260, 5.0, 0), (2, 4081, 4.0, 0)]


def amazon_line(user, asin, overall, t, **extra):
    return json.dumps({"reviewerID": user, "asin": asin, "reviewerName": "J. \"Doe\"",
                       "helpful": [0, 0], "reviewText": "Not much to write\nabout.",
                       "overall": overall, "summary": "good", "unixReviewTime": t,
                       "reviewTime": "02 28, 2014", **extra}) + "\n"


@pytest.mark.parametrize("gz", [False, True])
def test_amazon_2014_and_2018(tmp_path, gz):
    text = (amazon_line("A2IBPI20UZIR0U", "1384719342", 5.0, 1393545600)
            + amazon_line("A14VAT5EAX3D9S", "1384719342", 4.0, 1363392000,
                          style={"Format:": " Paperback"})
            + amazon_line("A2IBPI20UZIR0U", "B00004Y2UT", 3.0, 1392336000, vote="2",
                          image=["https://x/y.jpg"]))
    for edition, name in ((2014, "reviews_Musical_Instruments_5.json"),
                          (2018, "Musical_Instruments_5.json")):
        path = folder(tmp_path, f"amazon{edition}") / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
        inter = load_amazon("Musical_Instruments", edition, data_dir=str(tmp_path))
        assert rows(inter) == [("A14VAT5EAX3D9S", "1384719342", 4.0, 1363392000),
                               ("A2IBPI20UZIR0U", "1384719342", 5.0, 1393545600),
                               ("A2IBPI20UZIR0U", "B00004Y2UT", 3.0, 1392336000)]
    with pytest.raises(DataError, match="reviews_Musical_Instruments.json"):
        load_amazon("Musical_Instruments", 2014, core=0, data_dir=str(tmp_path))


def test_amazon_2023(tmp_path):
    lines = [{"rating": 5.0, "title": "Such a lovely scent", "text": "x", "images": [],
              "asin": "B00YQ6X8EO", "parent_asin": "B00YQ6X8EO", "user_id": "AGKHLEW2SOWHNMF",
              "timestamp": 1588687728923, "helpful_vote": 0, "verified_purchase": True},
             {"rating": 4.0, "title": "t", "text": "y", "images": [{"small_image_url": "u"}],
              "asin": "B081TJ8YS3", "parent_asin": "B08BZ63GMJ", "user_id": "AGKHLEW2SOWHNMF",
              "timestamp": 1588615855070, "helpful_vote": 1, "verified_purchase": False}]
    (folder(tmp_path, "amazon2023") / "All_Beauty.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines))
    inter = load_amazon("All_Beauty", 2023, core=0, data_dir=str(tmp_path))
    assert rows(inter) == [("AGKHLEW2SOWHNMF", "B00YQ6X8EO", 5.0, 1588687728),
                           ("AGKHLEW2SOWHNMF", "B08BZ63GMJ", 4.0, 1588615855)]


def test_book_crossing_latin1_quoted(tmp_path):
    text = ('"User-ID";"ISBN";"Book-Rating"\r\n"276725";"034545104X";"0"\r\n'
            '"276726";"0155061224";"5"\r\n"276727";"0446520802";"0"\r\n'
            '"276729";"052165615X";"3"\r\n"276733";"2080674722";"0"\r\n'
            '"276744";"038550120X";"7"\r\n"276746";"0425115801";"0"\r\n'
            '"278854";"ééé\'; quoted";"8"\r\n')
    (folder(tmp_path, "book-crossing") / "BX-Book-Ratings.csv").write_bytes(
        text.encode("latin-1"))
    inter = load_bookcrossing(str(tmp_path))
    assert len(inter) == 8 and "034545104X" in inter.item_ids.tolist()
    assert "ééé'; quoted" in inter.item_ids.tolist()
    assert inter.user_ids.dtype == np.int64 and inter.ratings.max() == 8.0


def test_steam_python_literals(tmp_path):
    lines = ["{u'username': u'Chaos Syren', u'hours': 0.1, u'products': 41, "
             "u'product_id': u'725280', u'page_order': 0, u'date': u'2017-12-17', "
             "u'text': u'This would not be acceptable as an entertainment even back in "
             "\\'90s', u'early_access': False, u'page': 1}",
             "{'username': 'Ruby', 'hours': 2.0, 'product_id': '328100', "
             "'date': '2017-10-16', 'text': \"it's fine\", 'early_access': True, 'page': 1, "
             "'found_funny': 1}"]
    path = folder(tmp_path, "steam") / "steam_reviews.json.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    inter = load_steam(str(tmp_path), cache_dir=str(tmp_path / "c"))
    assert rows(inter) == [("Chaos Syren", 725280, 1.0, 1513468800),
                           ("Ruby", 328100, 1.0, 1508112000)]
    aus = ("{'user_id': '76561197970982479', 'user_url': 'http://x', 'reviews': [{'funny': '', "
           "'posted': 'Posted November 5, 2011.', 'last_edited': '', 'item_id': '1250', "
           "'helpful': 'No ratings yet', 'recommend': True, 'review': 'Simple yet ...'}, "
           "{'funny': '', 'posted': 'Posted March 3.', 'item_id': '22200', "
           "'recommend': True, 'review': 'x'}]}\n")
    (tmp_path / "steam" / "australian_user_reviews.json.gz").write_bytes(
        gzip.compress(aus.encode()))
    inter = load_steam(str(tmp_path), version="australian")
    assert rows(inter) == [(76561197970982479, 1250, 1.0, 1320451200),
                           (76561197970982479, 22200, 1.0, 0)]  # no year: unknown
    path.write_bytes(gzip.compress(b"{'username': 'a', 'product_id': '1'}\n{'x': __import__}\n"))
    with pytest.raises(DataError, match="line 2: not a Python literal"):
        load_steam(str(tmp_path))


def test_gowalla_checkins(tmp_path):
    text = ("0\t2010-10-19T23:55:27Z\t30.2359091167\t-97.7951395833\t22847\n"
            "0\t2010-10-18T22:17:43Z\t30.2691029532\t-97.7493953705\t420315\n"
            "1\t2010-10-17T23:42:03Z\t30.2557309927\t-97.7633857727\t22847\n")
    (folder(tmp_path, "gowalla") / "loc-gowalla_totalCheckins.txt.gz").write_bytes(
        gzip.compress(text.encode()))
    inter = load_gowalla(str(tmp_path))
    assert rows(inter) == [(0, 22847, 1.0, 1287532527), (0, 420315, 1.0, 1287440263),
                           (1, 22847, 1.0, 1287358923)]


def test_yelp_reviews(tmp_path):
    lines = [{"review_id": "KU_O5udG6zpxOg-VcAEodg", "user_id": "mh_-eMZ6K5RLWhZyISBhwA",
              "business_id": "XQfwVwDr-v0ZS3_CbbE5Xw", "stars": 3.0, "useful": 0, "funny": 0,
              "cool": 0, "text": "If you decide to eat here...", "date": "2018-07-07 22:09:11"},
             {"review_id": "x", "user_id": "OyoGAe7OKpv6SyGZT5g77Q", "business_id":
              "7ATYjTIgM3jUlt4UM3IypQ", "stars": 5.0, "useful": 1, "funny": 0, "cool": 1,
              "text": "I've taken a lot of spin classes", "date": "2012-01-03 15:28:18"}]
    (folder(tmp_path, "yelp") / "yelp_academic_dataset_review.json").write_text(
        "".join(json.dumps(x) + "\n" for x in lines))
    inter = load_yelp(str(tmp_path))
    assert rows(inter) == [("OyoGAe7OKpv6SyGZT5g77Q", "7ATYjTIgM3jUlt4UM3IypQ", 5.0, 1325604498),
                           ("mh_-eMZ6K5RLWhZyISBhwA", "XQfwVwDr-v0ZS3_CbbE5Xw", 3.0, 1531001351)]


def test_missing_files_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="hetrec2011-lastfm-2k/user_artists.dat"):
        load_lastfm_hetrec(str(tmp_path))
    with pytest.raises(DataError, match="data_dir is not set"):
        load_goodbooks(None)


def test_cards_list_every_registry_config():
    cards = list_datasets()
    text = format_cards()
    for card in cards:
        assert card.name in text and card.licence and card.citation and card.implicit
        for option in card.config.split(", "):
            assert (CONFIG_DIR / "data" / f"{option}.yaml").is_file(), option
    for option in ("lastfm-hetrec", "goodbooks", "amazon2014", "amazon2018", "amazon2023",
                   "book-crossing", "steam", "gowalla", "yelp", "adjacency", "recbole"):
        assert any(option in c.config.split(", ") for c in cards), option


@pytest.mark.parametrize("short,category", [("beauty", "Beauty"),
                                            ("sports", "Sports_and_Outdoors"),
                                            ("toys", "Toys_and_Games")])
def test_amazon_leave_last_configs_on_a_tiny_file(tmp_path, short, category):
    from hydra.utils import instantiate

    from jaxrec.api import compose
    from jaxrec.data.pipeline import load_and_split

    rng = np.random.default_rng(0)
    lines, latest = [], {}
    for u in range(6):  # 6 users x the same 6 items: 5-core survives
        days = rng.permutation(6)
        for i, day in enumerate(days):
            t = 1393545600 + 86400 * int(day)
            lines.append(amazon_line(f"U{u}", f"B{i:09d}", 1.0 + i % 5, t))
        latest[f"U{u}"] = [f"B{i:09d}" for i in np.argsort(days)[-2:]]
    path = folder(tmp_path, "amazon2014") / f"reviews_{category}_5.json.gz"
    path.write_bytes(gzip.compress("".join(lines).encode()))
    cfg = compose([f"data=amazon-{short}-leave-last", f"paths.data_dir={tmp_path}",
                   f"paths.cache_dir={tmp_path / 'cache'}"], output_dir=tmp_path)
    ds = load_and_split(instantiate(cfg.data.dataset), cfg.data.preprocess, cfg.data.split)
    inter = ds.train
    assert len(ds.train) == 6 * 4 and len(ds.valid) == 6 and len(ds.test) == 6
    assert set(np.unique(ds.train.ratings).tolist()) == {1.0}  # implicit
    for part, k in ((ds.valid, 0), (ds.test, 1)):
        got = {inter.user_ids[u]: inter.item_ids[i] for u, i in zip(part.users, part.items,
                                                                    strict=True)}
        assert got == {u: pair[k] for u, pair in latest.items()}
