"""Item and user features as fixed-shape padded bags, built from a feature spec.

Every feature field becomes a *bag*: per row (item or user) a padded list of
feature ids with weights. A categorical value is a bag of one id (weight 1); a
multi-hot or counted field (genres, tags) a bag of its non-zero columns; text
a bag of tokens; a numeric value one id whose weight is the standardised
value (the factorisation-machine convention). The fields of one side are
concatenated into one :class:`FeatureBag` over a joint vocabulary (id 0 is
padding, weight 0), so a model embeds any mix of fields with one table::

    vec_r = sum_l weights[r, l] * E[ids[r, l]]          (ids, weights: [R, L])

``FeatureBag.slots`` gives each field's column range, for models that pool
per field (DeepFM, DCN).

The spec (``data.features`` in the config) is a list of built-in item fields or
a mapping::

    features:
      item: {genres: {}, year: {width: 5}, tags: {tfidf: true}, title: {}}
      user: {age: {}, gender: {}, occupation: {}, zip: {digits: 1}}
      tables:                       # extra CSV / parquet tables, any dataset
        - {path: users.csv, side: user, key: userId,
           columns: {age: bucket, gender: categorical, occupation: categorical}}

Built-in item fields come from :class:`~jaxrec.data.interactions.Interactions`:
``genres`` (multi-hot), ``year`` (bucketed), ``tags`` (counts, optional TF-IDF)
and ``title`` (word tokens of ``item_titles``, the trailing "(1995)" removed).
Built-in user fields come from ``Interactions.user_attributes`` (ml-100k ``u.user``,
ml-1m ``users.dat``), each one categorical id per user: ``age`` (the ml-1m age
bands ``<18``, ``18-24``, ``25-34``, ``35-44``, ``45-49``, ``50-55``, ``56+``: ml-1m's
band code, ml-100k's years banded alike; ml-100k also takes ``width`` or ``bins``),
``gender``, ``occupation`` and ``zip`` (its first ``digits`` characters, default 1).
A user the user file does not list gets no id for the field; a dataset without
user attributes is an error naming the field.
Column kinds of a table: ``categorical``, ``multi_categorical`` (split on
``sep``, default ``|``), ``numeric`` (standardised), ``bucket`` (quantile
buckets of a number) and ``text`` (word tokens).

:func:`build_features` also records which items and users have training
interactions (``item_warm``, ``user_warm``) and each user's history profile
(the mean of the feature bags of the user's training items), so content and
hybrid models can score cold items from their features.
"""

from jaxrec.data.features.bags import FeatureBag, Features, concat_fields, featureless, id_bag
from jaxrec.data.features.build import build_features, history_profiles
from jaxrec.data.features.builtin import (
    AGE_BAND_EDGES,
    AGE_BANDS,
    ITEM_FIELDS,
    USER_FIELDS,
    age_band,
    item_field,
    user_field,
)
from jaxrec.data.features.kinds import tokenize
from jaxrec.data.features.tables import COLUMN_KINDS, table_fields

__all__ = [
    "AGE_BANDS",
    "AGE_BAND_EDGES",
    "COLUMN_KINDS",
    "FeatureBag",
    "Features",
    "ITEM_FIELDS",
    "USER_FIELDS",
    "age_band",
    "build_features",
    "concat_fields",
    "featureless",
    "history_profiles",
    "id_bag",
    "item_field",
    "table_fields",
    "tokenize",
    "user_field",
]
