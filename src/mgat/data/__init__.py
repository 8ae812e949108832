"""Datasets, their on-disk format, importers, splitters and negative sampling."""

from mgat.data.dataset import Dataset, DatasetInfo, builtin_names
from mgat.data.importers import (
    IMPORT_FORMATS,
    import_csv,
    import_dataset,
    import_mmrec,
    import_research,
)
from mgat.data.sampler import NegativeSampler
from mgat.data.splits import (
    SPLIT_METHODS,
    k_core,
    leave_last_out,
    random_split,
    split_interactions,
    temporal_split,
)

__all__ = [
    "IMPORT_FORMATS",
    "SPLIT_METHODS",
    "Dataset",
    "DatasetInfo",
    "NegativeSampler",
    "builtin_names",
    "import_csv",
    "import_dataset",
    "import_mmrec",
    "import_research",
    "k_core",
    "leave_last_out",
    "random_split",
    "split_interactions",
    "temporal_split",
]
