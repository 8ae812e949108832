"""Malformed input, generated: every failure is an ``MgatError``, never a crash.

Each property feeds generated sources to an importer, the ``Dataset``
constructor, ``Dataset.load`` or ``mgat data import`` and accepts two
outcomes only: a dataset that keeps every documented invariant, or an
``MgatError`` with a message. Any other exception (from numpy, pandas, the
standard library) is a failure, and so is a half-written ``--out``.

Sources are built two ways: from scratch (random cells, shapes, dtypes and
bytes), and by mutating a valid source, which reaches the checks behind the
first parser. ``pytest --hypothesis-show-statistics`` counts the examples.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mgat.cli import main
from mgat.data import Dataset, import_csv, import_mmrec, import_research
from mgat.data.dataset import SPLITS
from mgat.errors import MgatError

EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------ outcomes


def check_dataset(dataset: Dataset) -> None:
    """The invariants that ``docs/data-format.md`` promises of a dataset."""
    for ids in (dataset.user_ids, dataset.item_ids):
        assert ids.ndim == 1 and ids.dtype.kind == "U"
        assert len(np.unique(ids)) == len(ids)
    assert set(dataset.splits) == set(SPLITS)
    for pairs in dataset.splits.values():
        assert pairs.ndim == 2 and pairs.shape[1] == 2 and len(pairs) > 0
        assert pairs.dtype == np.int64
        assert (pairs >= 0).all()
        assert (pairs[:, 0] < dataset.num_users).all()
        assert (pairs[:, 1] < dataset.num_items).all()
    for array in dataset.features.values():
        assert array.dtype == np.float32 and array.ndim == 2
        assert array.shape[0] == dataset.num_items and array.shape[1] >= 1
        assert np.isfinite(array).all()


def dataset_or_error(load) -> Dataset | None:
    """Run ``load``: a valid dataset, or None after an ``MgatError`` with a message."""
    try:
        dataset = load()
    except MgatError as err:
        assert str(err).strip(), "an error without a message"
        return None
    check_dataset(dataset)
    return dataset


# ---------------------------------------------------------------- strategies

TOKENS = ["", " ", "nan", "NaN", "None", "null", "inf", "-inf", "-1", "1.5", "1e400"]
TOKENS += ["9" * 25, str(2**63), " 3", "3 ", "0x1f", "é", '"', "'", "a,b", "\t", "\\"]
TOKENS += ["train", "valid", "test", "TRAIN", "0", "1", "2", "3"]
TOKENS += ["¹", "--5", "٣", "1_0", "+4"]  # digits int() reads or refuses

cells = st.one_of(
    st.integers(0, 12).map(str),
    st.sampled_from(TOKENS),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=5),
)

COLUMNS = ["user", "item", "split", "timestamp", "rating", "userID", "itemID"]
COLUMNS += ["x_label", "extra", ""]


@st.composite
def table_text(draw, columns: list[str], sep: str) -> str:
    """A header of ``columns`` and rows of random cells (ragged at times)."""
    header = draw(
        st.one_of(st.just(columns), st.lists(st.sampled_from(COLUMNS), max_size=6))
    )
    width = len(header)
    rows = draw(
        st.lists(
            st.lists(cells, min_size=max(width - 1, 0), max_size=width + 1),
            max_size=20,
        )
    )
    lines = [sep.join(header)] + [sep.join(row) for row in rows]
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


def valid_table(columns: list[str], sep: str, labels) -> str:
    """A well-formed table: 6 users with 4 interactions each, one per split+1."""
    rows = []
    for user in range(6):
        for position, item in enumerate(range(user, user + 4)):
            label = labels[min(position, 2)] if position < 3 else labels[0]
            values = {"user": user, "item": item, "split": label, "rating": 4}
            values.update({"userID": user, "itemID": item, "x_label": label})
            values["timestamp"] = 100 * user + position
            rows.append(sep.join(str(values[c]) for c in columns))
    return "\n".join([sep.join(columns), *rows]) + "\n"


CSV_TABLE = valid_table(["user", "item", "split"], ",", SPLITS)
MMREC_TABLE = valid_table(["userID", "itemID", "x_label"], "\t", ("0", "1", "2"))


@st.composite
def mutated(draw, text: str, sep: str) -> str:
    """``text`` with a few cells replaced, lines dropped or bytes cut."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        row = draw(st.integers(0, len(lines) - 1))
        fields = lines[row].split(sep)
        column = draw(st.integers(0, len(fields) - 1))
        fields[column] = draw(cells)
        lines[row] = sep.join(fields)
    if draw(st.booleans()):
        del lines[draw(st.integers(0, len(lines) - 1))]
    result = "\n".join(lines) + "\n"
    if draw(st.integers(0, 9)) == 0:
        result = result[: draw(st.integers(0, len(result)))]
    return result


def any_table(columns: list[str], sep: str, labels) -> st.SearchStrategy[str]:
    base = valid_table(columns, sep, labels)
    return st.one_of(
        table_text(columns, sep), mutated(base, sep), st.just(base), st.just("")
    )


DTYPES = [np.float32, np.float64, np.float16, np.int8, np.int64, np.uint64]
DTYPES += [np.bool_, np.complex64, np.dtype("<U3"), np.dtype("<M8[s]")]


@st.composite
def npy_content(draw, rows: int | None = None, columns: int | None = None):
    """Bytes to save as a .npy: an array of any dtype and shape, or not an array."""
    kind = draw(st.sampled_from(["fitting", "any", "object", "garbage"]))
    if kind == "garbage":
        return draw(st.binary(max_size=64))
    if kind == "object":
        return np.array([[1, 2], [3]], dtype=object)
    if kind == "fitting" and rows is not None:
        width = columns if columns is not None else draw(st.integers(0, 4))
        shape = st.just((rows, width))
    else:
        shape = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    if kind == "fitting" and dtype.kind in "biufc":
        return draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    return draw(hnp.arrays(dtype, shape))


def _elements(dtype: np.dtype) -> st.SearchStrategy:
    """Small whole numbers mostly, and the extremes the dtype can hold."""
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "fc":
        big = 2.0**40 if dtype.itemsize > 2 else 6.0e4  # float16 ends at 65504
        return st.integers(-3, 30) | st.sampled_from([np.nan, np.inf, big])
    info = np.iinfo(dtype)
    return st.integers(max(info.min, -3), 30) | st.sampled_from([info.min, info.max])


def save_npy(path: Path, content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content, allow_pickle=content.dtype == object)


# ------------------------------------------------------------------ importers


@EXAMPLES
@example(  # a .gz name on plain text
    text=CSV_TABLE, sep=None, suffix=".csv.gz", split_method=None,
    ratios=(0.8, 0.1, 0.1), kcore=None, min_rating=None, feature=None, items=None,
)  # fmt: skip
@example(  # an items file with a ragged line
    text=CSV_TABLE, sep=None, suffix=".csv", split_method=None,
    ratios=(0.8, 0.1, 0.1), kcore=None, min_rating=None, feature=None,
    items=["0", ","],
)  # fmt: skip
@example(  # 0-d features
    text=CSV_TABLE, sep=None, suffix=".csv", split_method=None,
    ratios=(0.8, 0.1, 0.1), kcore=None, min_rating=None,
    feature=np.float32(0.0), items=None,
)  # fmt: skip
@given(
    text=any_table(["user", "item", "split"], ",", SPLITS),
    sep=st.sampled_from([None, ",", "\t", ";"]),
    suffix=st.sampled_from([".csv", ".tsv", ".csv.gz"]),
    split_method=st.sampled_from([None, "random", "temporal", "leave_last_out", "x"]),
    ratios=st.one_of(
        st.just((0.8, 0.1, 0.1)),
        st.lists(st.floats(allow_nan=True, width=32), max_size=4).map(tuple),
    ),
    kcore=st.one_of(st.none(), st.integers(-2, 5), st.just(2**62)),
    min_rating=st.one_of(st.none(), st.floats(width=32)),
    feature=st.one_of(st.none(), npy_content(rows=13)),
    items=st.one_of(st.none(), st.lists(cells, max_size=15)),
)
def test_csv_import_returns_a_dataset_or_an_mgat_error(
    text, sep, suffix, split_method, ratios, kcore, min_rating, feature, items
):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = root / f"interactions{suffix}"
        source.write_text(text)
        options = {"sep": sep, "split_method": split_method, "ratios": ratios}
        options.update(kcore=kcore, min_rating=min_rating)
        if feature is not None:
            save_npy(root / "visual.npy", feature)
            options["features"] = {"visual": root / "visual.npy"}
        if items is not None:
            (root / "items.txt").write_text("\n".join(items))
            options["items_file"] = root / "items.txt"
        dataset_or_error(lambda: import_csv(source, **options))


@EXAMPLES
@example(MMREC_TABLE, {"image_feat.npy": np.float32(0.0)}, None)  # 0-d features
@example(MMREC_TABLE, {"audio_feat.npy": np.zeros((9, 0))}, None)  # width 0
@example(MMREC_TABLE.replace("\n5\t", f"\n{2**62}\t"), {}, None)  # a huge user id
@given(
    text=any_table(["userID", "itemID", "x_label"], "\t", ("0", "1", "2")),
    features=st.dictionaries(
        st.sampled_from(["image_feat.npy", "text_feat.npy", "audio_feat.npy"]),
        npy_content(rows=9),
        max_size=2,
    ),
    name=st.sampled_from([None, "toy", "other"]),
)
def test_mmrec_import_returns_a_dataset_or_an_mgat_error(text, features, name):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "toy.inter").write_text(text)
        for filename, content in features.items():
            save_npy(root / filename, content)
        dataset_or_error(lambda: import_mmrec(root, name=name))


RESEARCH_USERS = 4


def research_train() -> np.ndarray:
    users = np.repeat(np.arange(RESEARCH_USERS), 3)
    items = RESEARCH_USERS + (users + np.tile([0, 1, 2], RESEARCH_USERS)) % 7
    return np.stack([users, items], axis=1)


def research_held_out(offset: int) -> np.ndarray:
    rows = np.empty(RESEARCH_USERS, dtype=object)
    for user in range(RESEARCH_USERS):
        rows[user] = [user, RESEARCH_USERS + (user + 3 + offset) % 7]
    return rows


@st.composite
def research_array(draw, valid: np.ndarray):
    """``valid``, one of its values replaced, or a generated array or blob."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return valid
    if choice == 1 and valid.dtype != object:
        array = valid.astype(draw(st.sampled_from([np.int64, np.float64])))
        index = tuple(draw(st.integers(0, n - 1)) for n in array.shape)
        value = draw(st.sampled_from([-1, 2**40, 0, 3, 11, np.nan, 1.5]))
        if array.dtype.kind == "f" or float(value).is_integer():
            array[index] = value
        return array
    if choice == 1:
        rows = valid.copy()
        user = draw(st.integers(0, len(rows) - 1))
        rows[user] = draw(
            st.lists(st.one_of(st.integers(-2, 12), st.just(2**70)), max_size=4)
        )
        return rows
    return draw(npy_content())


@EXAMPLES
@example(  # an empty .npy file
    research_train(), research_held_out(0), b"", None, None, False
)
@example(  # a user id that would number 2^40 users
    np.vstack([research_train(), [[2**40, 5]]]), research_held_out(0),
    research_held_out(1), None, None, True,
)  # fmt: skip
@given(
    train=research_array(research_train()),
    valid=research_array(research_held_out(0)),
    test=research_array(research_held_out(1)),
    feature=st.one_of(st.none(), npy_content(rows=7)),
    num_users=st.one_of(st.none(), st.integers(-1, 8), st.just(2**62)),
    short_names=st.booleans(),
)
def test_research_import_returns_a_dataset_or_an_mgat_error(
    train, valid, test, feature, num_users, short_names
):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        save_npy(root / "train.npy", train)
        held_out = ("val.npy", "test.npy") if short_names else None
        held_out = held_out or ("val_full.npy", "test_full.npy")
        save_npy(root / held_out[0], valid)
        save_npy(root / held_out[1], test)
        if feature is not None:
            save_npy(root / "FeatureVideo.npy", feature)
        dataset_or_error(lambda: import_research(root, num_users=num_users))


# -------------------------------------------------------- the dataset itself

pair_arrays = st.one_of(
    hnp.arrays(
        st.sampled_from([np.int64, np.int32, np.uint64, np.float64, np.bool_]),
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
    ),
    hnp.arrays(
        np.int64,
        st.tuples(st.integers(0, 6), st.just(2)),
        elements=st.integers(-1, 6) | st.just(2**62),
    ),
)
id_lists = st.one_of(
    st.lists(st.integers(-3, 8), min_size=0, max_size=7),
    st.lists(cells, min_size=0, max_size=7),
    hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=3)),
)


@EXAMPLES
@given(
    user_ids=id_lists,
    item_ids=id_lists,
    splits=st.dictionaries(st.sampled_from([*SPLITS, "extra"]), pair_arrays),
    features=st.dictionaries(st.sampled_from(["visual", "text"]), npy_content(6)),
)
def test_dataset_constructor_returns_a_dataset_or_an_mgat_error(
    user_ids, item_ids, splits, features
):
    features = {
        name: value for name, value in features.items() if not isinstance(value, bytes)
    }
    dataset_or_error(lambda: Dataset("x", user_ids, item_ids, splits, features))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def manifests(draw) -> str:
    """dataset.json: valid, with one field changed, any JSON, or not JSON."""
    manifest = {
        "format": "mgat-dataset",
        "version": 1,
        "name": "toy",
        "modalities": {"visual": "visual.npy"},
        "meta": {},
    }
    choice = draw(st.integers(0, 3))
    if choice == 1:
        key = draw(st.sampled_from(sorted(manifest)))
        manifest[key] = draw(
            json_values | st.just({"visual": "../visual.npy"}) | st.just({"v": 3})
        )
    if choice == 2:
        return json.dumps(draw(json_values))
    if choice == 3:
        return draw(st.text(max_size=20))
    return json.dumps(manifest)


@EXAMPLES
@example(  # a modality file that is not a file name
    json.dumps({"format": "mgat-dataset", "version": 1, "modalities": {"v": 3}}),
    "user,item,split\n", "interactions.csv", None, None, None,
)  # fmt: skip
@given(
    manifest=manifests(),
    interactions=any_table(["user", "item", "split"], ",", SPLITS),
    interactions_name=st.sampled_from(
        ["interactions.csv", "interactions.csv.gz", "interactions.tsv", "nothing"]
    ),
    users=st.one_of(st.none(), st.lists(cells, max_size=8)),
    items=st.one_of(st.none(), st.just([str(i) for i in range(9)]), st.lists(cells)),
    feature=st.one_of(st.none(), npy_content(rows=9)),
)
def test_dataset_load_returns_a_dataset_or_an_mgat_error(
    manifest, interactions, interactions_name, users, items, feature
):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "dataset"
        root.mkdir()
        (root / "dataset.json").write_text(manifest)
        (root / interactions_name).write_text(interactions)
        for name, lines in (("users.txt", users), ("items.txt", items)):
            if lines is not None:
                (root / name).write_text("\n".join(lines) + "\n")
        if feature is not None:
            save_npy(root / "visual.npy", feature)
        dataset_or_error(lambda: Dataset.load(root))


# ------------------------------------------------------- mgat data import --out


@EXAMPLES
@example(  # an id with spaces around it, which a saved dataset cannot keep
    "csv", CSV_TABLE.replace("\n3,", "\n 3 ,"), None, True
)
@example("csv", CSV_TABLE.replace("\n0,0,", "\n¹,0,"), None, False)  # not int()
@given(
    layout=st.sampled_from(["mmrec", "csv"]),
    text=st.one_of(
        any_table(["userID", "itemID", "x_label"], "\t", ("0", "1", "2")),
        any_table(["user", "item", "split"], ",", SPLITS),
    ),
    feature=st.one_of(st.none(), npy_content(rows=9)),
    nested=st.booleans(),
)
def test_data_import_writes_a_whole_dataset_or_nothing(layout, text, feature, nested):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = root / "source"
        source.mkdir()
        command = ["-q", "data", "import", "--format", layout]
        if layout == "mmrec":
            (source / "toy.inter").write_text(text)
            command.append(str(source))
            if feature is not None:
                save_npy(source / "image_feat.npy", feature)
        else:
            (source / "toy.csv").write_text(text)
            command.append(str(source / "toy.csv"))
        out = root / "made" / "dataset" if nested else root / "dataset"

        code = main([*command, "--out", str(out)])

        if code == 0:
            check_dataset(Dataset.load(out))
        else:
            assert code == 2
            assert sorted(p.name for p in root.iterdir()) == ["source"]
