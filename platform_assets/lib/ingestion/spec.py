"""Dataset specs: what a YAML file under ``platform_assets/datasets/`` declares, validated.

A spec names the dataset's asset, its time partitions, where its rows come from, every column
with its type and rules, the primary key (or a dedupe key, or neither), the partition column and
the write mode. A table source is read incrementally instead: no partitions, upserted by its key.
The platform builds the asset, its checks and its dead-letter wiring from it
(``defs/datasets``), so adding a dataset needs no Python. The format is documented in
docs/datasets.md.
"""

import re
from datetime import date, datetime
from decimal import Decimal
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from dagster._utils.schedules import is_valid_cron_string
from pydantic import Field, ValidationError, model_validator

from platform_assets.lib.ingestion.derivation_spec import Derivation, PartitionStart
from platform_assets.lib.ingestion.spec_parts import StrictModel, known_zone
from platform_assets.lib.row_hash import ROW_HASH_COLUMN
from platform_assets.lib.sources.http_json import HttpJsonSource
from platform_assets.lib.sources.landing_readers import LandingFilesSource
from platform_assets.lib.sources.postgres_table import PostgresTableSource

# The format of a timestamptz written as whole seconds or milliseconds since 1970-01-01 UTC.
EPOCH_FORMATS = ("epoch_s", "epoch_ms")
ColumnType = Literal[
    "text", "integer", "decimal", "double", "boolean", "date", "timestamptz", "timestamp", "json"
]
TIME_COLUMN_TYPES = ("date", "timestamptz", "timestamp")
# What a table source's updated_at may be: an instant, or a wall-clock time read as UTC.
MARK_TIME_TYPES = ("timestamptz", "timestamp")
Granularity = Literal["hourly", "daily", "weekly", "monthly"]
# How a partition's key is written (in file names, URLs and the UI) unless the spec says otherwise:
# Dagster's own defaults.
DEFAULT_KEY_FORMATS: dict[Granularity, str] = {
    "hourly": "%Y-%m-%d-%H:%M",
    "daily": "%Y-%m-%d",
    "weekly": "%Y-%m-%d",
    "monthly": "%Y-%m-%d",
}
# The strftime fields a key format may use, each with the digits it writes.
KEY_FORMAT_FIELDS = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%H": r"\d{2}", "%M": r"\d{2}"}
WriteMode = Literal["replace_partition", "append", "upsert"]
# A Postgres identifier: ASCII letters, digits and underscores, at most 63 bytes (NAMEDATALEN - 1;
# a longer name would be silently truncated by the server).
_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
RESERVED_COLUMNS = (ROW_HASH_COLUMN,)


class DatasetSpecError(ValueError):
    """A dataset file is not a valid spec; the message names the file and the field."""


class ColumnSpec(StrictModel):
    """One column: its type (parsed from text) and the rules every value must meet; its
    ``description`` and ``tags`` (``{pii: email}``) show in the UI's column schema.

    An empty field is a missing value; ``required`` refuses it. ``decimal`` needs ``precision`` and
    ``scale`` and refuses values that would lose digits. An ``integer`` column with
    ``accept_integral_decimals`` also takes a number whose fraction is zero (``517.0``, as pandas
    writes integers of a column with gaps), stored as the integer it is; ``517.5`` stays refused.
    A column with ``derive`` is not read from the source but computed from other columns
    (``derivation_spec``). A ``timestamp`` is a wall-clock time without zone.
    """

    name: str = Field(pattern=_NAME)
    type: ColumnType
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    required: bool = False
    precision: Annotated[int, Field(ge=1, le=38)] | None = None
    scale: Annotated[int, Field(ge=0, le=38)] | None = None
    enum: list[str] | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    regex: str | None = None
    max_length: Annotated[int, Field(ge=1)] | None = None
    accept_integral_decimals: bool = False
    # Where a JSON source (JSON Lines, an API) holds the value: a dotted path (user.id); its name
    # by default.
    path: str | None = Field(default=None, pattern=r"^[^.]+(\.[^.]+)*$")
    # What a CSV file's header line calls the column, when that is not its name (an export's
    # "Culmen Length (mm)"); the header is matched exactly, the column keeps its own name.
    header: str | None = Field(default=None, min_length=1)
    # How the source writes the values (lib/ingestion/value_formats): a strptime pattern for a
    # date or timestamp, epoch_s / epoch_ms for a timestamptz; the decimal point of a number.
    format: str | None = None
    decimal_separator: Literal[".", ","] = "."
    derive: Derivation | None = None

    @model_validator(mode="after")
    def _rules_fit_the_type(self) -> "ColumnSpec":
        if self.name in RESERVED_COLUMNS:
            raise ValueError(f"column {self.name}: the name is reserved by the platform")
        if self.accept_integral_decimals and self.type != "integer":
            raise ValueError(f"column {self.name}: accept_integral_decimals applies to integers")
        if self.type == "decimal" and (self.precision is None or self.scale is None):
            raise ValueError(f"column {self.name}: a decimal needs precision and scale")
        if self.type == "decimal" and self.scale > self.precision:  # type: ignore[operator]
            raise ValueError(f"column {self.name}: scale is larger than precision")
        if self.decimal_separator != "." and self.type not in ("decimal", "double"):
            raise ValueError(f"column {self.name}: decimal_separator applies to decimal and double")
        if self.format is not None:
            self._format_fits_the_type()
        numeric = self.type in ("integer", "decimal", "double")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"column {self.name}: min/max apply to numeric columns only")
        textual = self.type == "text"
        if (self.enum or self.regex or self.max_length) and not textual:
            raise ValueError(f"column {self.name}: enum/regex/max_length apply to text only")
        if self.regex is not None:
            # Compiled by the engine that evaluates it (Arrow's RE2, anchored as validation
            # anchors it): a pattern only Python accepts, such as a backreference, fails here.
            try:
                pc.match_substring_regex(pa.array([""]), f"^(?:{self.regex})$")
            except pa.ArrowInvalid as error:
                raise ValueError(
                    f"column {self.name}: regex {self.regex!r} is not one Arrow's RE2 engine"
                    f" evaluates (no backreferences or lookarounds): {error}"
                ) from error
        return self

    def _format_fits_the_type(self) -> None:
        kinds = ("date", "timestamp", "timestamptz")
        if self.type not in kinds:
            raise ValueError(f"column {self.name}: format applies to {', '.join(kinds)} columns")
        if self.format in EPOCH_FORMATS:
            if self.type != "timestamptz":
                raise ValueError(
                    f"column {self.name}: {self.format} is an instant: declare type timestamptz"
                )
            return
        if "%" not in self.format:  # type: ignore[operator]
            raise ValueError(
                f"column {self.name}: format {self.format!r} is neither a strptime pattern (e.g."
                f" %d/%m/%Y) nor one of {', '.join(EPOCH_FORMATS)}"
            )
        has_time = re.search(r"%[HIMSfp]", self.format)  # type: ignore[arg-type]
        has_offset = "%z" in self.format  # type: ignore[operator]
        if self.type == "date" and (has_time or has_offset):
            raise ValueError(f"column {self.name}: a date's format has no time of day or offset")
        if self.type == "timestamptz" and not has_offset:
            raise ValueError(
                f"column {self.name}: a timestamptz format needs the UTC offset (%z); a wall-clock"
                " time without one is a timestamp"
            )
        if self.type == "timestamp" and has_offset:
            raise ValueError(f"column {self.name}: a timestamp has no offset: use timestamptz")


def _moment(value: date | datetime) -> datetime:
    """A date as its midnight (both are local times in the partitions' zone)."""
    return value if isinstance(value, datetime) else datetime.combine(value, datetime.min.time())


class PartitionsSpec(StrictModel):
    """Time partitions: one per hour, day, week (Monday to Monday) or month of local time in
    ``timezone`` (DST-correct: a local day may last 23 or 25 hours), from ``start``.

    ``key_format`` is how a key is written, in file patterns (``{date}``), URLs and the UI.
    ``end`` closes a historical dataset's partitions: the first moment without one (exclusive,
    as Dagster's ``end_date``: ``end: 2014-01-01`` makes 2013-12-31 the last day).
    A backfill loads its whole range in one run (one transaction) unless
    ``max_partitions_per_run`` caps the partitions per run; Dagster's CLI
    (``dagster asset materialize --partition-range``) accepts ranges only without a cap.
    """

    start: date | datetime
    end: date | datetime | None = None
    granularity: Granularity = "daily"
    timezone: str = "UTC"
    key_format: str | None = None
    max_partitions_per_run: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _valid(self) -> "PartitionsSpec":
        known_zone("partitions.timezone", self.timezone)
        if self.end is not None and _moment(self.end) <= _moment(self.start):
            raise ValueError(f"partitions.end {self.end} is not after partitions.start")
        leftover = self.format
        for field in KEY_FORMAT_FIELDS:
            leftover = leftover.replace(field, "")
        if "%" in leftover:
            raise ValueError(
                f"partitions.key_format {self.format!r} may use only {sorted(KEY_FORMAT_FIELDS)}"
            )
        return self

    @property
    def format(self) -> str:
        """The key format: declared, or the granularity's default."""
        return self.key_format or DEFAULT_KEY_FORMATS[self.granularity]


class ScheduleSpec(StrictModel):
    """When the dataset's load job loads the previous day: a cron in an explicit time zone, and
    whether the schedule runs from the start (else it is turned on in the UI)."""

    cron: str
    timezone: str = "UTC"
    running: bool = True

    @model_validator(mode="after")
    def _valid(self) -> "ScheduleSpec":
        if not is_valid_cron_string(self.cron):  # exactly what a Dagster schedule accepts
            raise ValueError(f"schedule.cron {self.cron!r} is not a valid cron expression")
        known_zone("schedule.timezone", self.timezone)
        return self


class FreshnessSpec(StrictModel):
    """How old the newest load may grow before the UI warns, and before it fails."""

    warn_after_hours: Annotated[float, Field(gt=0)] = 28
    fail_after_hours: Annotated[float, Field(gt=0)] = 36

    @model_validator(mode="after")
    def _ordered(self) -> "FreshnessSpec":
        if self.warn_after_hours >= self.fail_after_hours:
            raise ValueError("freshness.warn_after_hours must be less than fail_after_hours")
        return self


class VolumeSpec(StrictModel):
    """How far a partition's row count may stray from the median of the trailing partitions
    (as a share of that median) before the volume check warns, and before it errs."""

    trailing_partitions: Annotated[int, Field(ge=1, le=90)] = 7
    min_history: Annotated[int, Field(ge=1)] = 3
    warn_deviation: Annotated[float, Field(gt=0)] = 0.5
    error_deviation: Annotated[float, Field(gt=0)] = 0.9

    @model_validator(mode="after")
    def _ordered(self) -> "VolumeSpec":
        if self.warn_deviation > self.error_deviation:
            raise ValueError("volume.warn_deviation must not exceed error_deviation")
        if self.min_history > self.trailing_partitions:
            raise ValueError("volume.min_history must not exceed trailing_partitions")
        return self


class DatasetSpec(StrictModel):
    """A declared dataset (see the module docstring)."""

    name: str = Field(pattern=_NAME)
    asset_key: list[Annotated[str, Field(pattern=_NAME)]] = Field(min_length=1)
    description: str
    group: str = Field(pattern=_NAME)
    owners: list[str] = Field(default_factory=list)
    partitions: PartitionsSpec | None = None
    source: Annotated[
        LandingFilesSource | HttpJsonSource | PostgresTableSource, Field(discriminator="kind")
    ]
    columns: list[ColumnSpec] = Field(min_length=1)
    primary_key: list[str] = Field(default_factory=list)
    dedupe_key: list[str] = Field(default_factory=list)
    partition_column: str | None = None
    write_mode: WriteMode = "replace_partition"
    transform: str | None = Field(default=None, pattern=r"^[\w.]+:\w+$")
    max_dead_letter_ratio: Annotated[float, Field(ge=0, le=1)] = 0.05
    fail_dead_letter_ratio: Annotated[float, Field(ge=0, le=1)] = 0.5
    schedule: ScheduleSpec | None = None
    freshness: FreshnessSpec = FreshnessSpec()
    volume: VolumeSpec = VolumeSpec()

    @model_validator(mode="after")
    def _names_exist(self) -> "DatasetSpec":
        names = [column.name for column in self.columns]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"columns declared twice: {repeated}")
        for field, key in (("primary_key", self.primary_key), ("dedupe_key", self.dedupe_key)):
            unknown = sorted(set(key) - set(names))
            if unknown:
                raise ValueError(f"{field} names unknown columns {unknown}")
            optional = [name for name in key if not self.column(name).required]  # type: ignore[union-attr]
            if optional:
                raise ValueError(f"{field} columns must be required: {optional}")
        if self.primary_key and self.dedupe_key:
            raise ValueError("dedupe_key repeats what primary_key does: declare one of them")
        if self.write_mode == "upsert" and not self.primary_key:
            raise ValueError("write_mode upsert needs a primary_key (the rows it updates)")
        if self.fail_dead_letter_ratio < self.max_dead_letter_ratio:
            raise ValueError("fail_dead_letter_ratio must be at least max_dead_letter_ratio")
        if self.incremental:
            self._check_table_source()
        else:
            self._check_partitions()
        for column in self.columns:
            if column.derive is not None:
                self._check_derivation(column)
        self._check_headers()
        return self

    def _check_headers(self) -> None:
        """A ``header`` names a column of a CSV file's header line: a source column of a CSV
        source that has one, and no two columns the same header."""
        headers = [c.header or c.name for c in self.columns if c.derive is None]
        declared = [c.name for c in self.columns if c.header is not None]
        if not declared:
            return
        source = self.source
        if getattr(source, "format", None) != "csv" or not getattr(source, "header", False):
            raise ValueError(f"columns {declared}: header applies to CSV files with a header line")
        derived = [c.name for c in self.columns if c.header is not None and c.derive is not None]
        if derived:
            raise ValueError(f"columns {derived}: a derived column is not read, so has no header")
        repeated = sorted({h for h in headers if headers.count(h) > 1})
        if repeated:
            raise ValueError(f"headers read by two columns: {repeated}")

    def _check_partitions(self) -> None:
        """A file or API source is loaded a time partition at a time, found by its column."""
        if self.partitions is None or self.partition_column is None:
            raise ValueError(f"a {self.source.kind} source needs partitions and partition_column")
        partition = self.column(self.partition_column)
        if partition is None or partition.type not in TIME_COLUMN_TYPES:
            raise ValueError(
                "partition_column must be a declared date, timestamptz or timestamp column"
            )
        if partition.type == "date" and self.partitions.granularity == "hourly":
            raise ValueError("hourly partitions need a timestamptz partition_column, not a date")
        if self.partitions.end is not None and self.schedule is not None:
            raise ValueError(
                "partitions.end: a dataset whose partitions end has nothing to schedule (its"
                " landing sensor still loads a late file); remove schedule"
            )

    def _check_table_source(self) -> None:
        """A table source is extracted incrementally by its high-water columns and upserted by
        its key: no time partitions, and both columns declared with the types the mark needs."""
        source = self.source
        assert isinstance(source, PostgresTableSource)
        if self.partitions is not None or self.partition_column is not None:
            raise ValueError(
                "a postgres_table source is extracted incrementally (by its high-water mark):"
                " declare no partitions or partition_column"
            )
        if self.write_mode != "upsert" or self.primary_key != [source.key_column]:
            raise ValueError(
                f"a postgres_table source is upserted by its key: declare write_mode: upsert and"
                f" primary_key: [{source.key_column}]"
            )
        for name, kinds in (
            (source.updated_at_column, MARK_TIME_TYPES),
            (source.key_column, ("integer",)),
        ):
            column = self.column(name)
            if column is None or column.type not in kinds or column.derive is not None:
                raise ValueError(
                    f"source high-water column {name!r} must be a declared"
                    f" {' or '.join(kinds)} source column"
                )

    @property
    def incremental(self) -> bool:
        """Whether the dataset is a table extracted incrementally (unpartitioned, upserted)."""
        return isinstance(self.source, PostgresTableSource)

    def _check_derivation(self, column: ColumnSpec) -> None:
        """The derivation reads declared source columns of the types it needs, and writes the
        type its column declares."""
        derive = column.derive
        assert derive is not None
        if derive.produces is not None and column.type != derive.produces:
            raise ValueError(
                f"column {column.name}: {derive.kind} gives a {derive.produces},"
                f" not a {column.type}"
            )
        if isinstance(derive, PartitionStart):
            if self.partitions is None:
                raise ValueError(f"column {column.name}: partition_start needs partitions")
            if column.type not in derive.gives:
                raise ValueError(
                    f"column {column.name}: partition_start gives a {' or '.join(derive.gives)},"
                    f" not a {column.type}"
                )
        for name, types in derive.inputs().items():
            source = self.column(name)
            if source is None or source.derive is not None:
                raise ValueError(
                    f"column {column.name}: {derive.kind} reads {name!r}, which is not a declared"
                    " source column"
                )
            if types is not None and source.type not in types:
                raise ValueError(
                    f"column {column.name}: {derive.kind} needs {name!r} to be"
                    f" {' or '.join(types)}, not {source.type}"
                )

    @property
    def null_values(self) -> list[str]:
        """The spellings of a missing value besides the empty field (a CSV source's
        ``null_values``)."""
        return list(getattr(self.source, "null_values", []))

    @property
    def unique_key(self) -> list[str]:
        """The columns whose repeats are refused: the primary key, or else the dedupe key (none
        for a keyless dataset, which keeps every row)."""
        return self.primary_key or self.dedupe_key

    @property
    def unique_key_label(self) -> str:
        """How messages name the unique key: ``primary key [...]`` or ``dedupe key [...]``."""
        kind = "primary key" if self.primary_key else "dedupe key"
        return f"{kind} {self.unique_key}"

    def column(self, name: str) -> ColumnSpec | None:
        """The column called ``name``, if declared."""
        return next((column for column in self.columns if column.name == name), None)

    @property
    def column_names(self) -> list[str]:
        """The declared columns, in order: the table's columns."""
        return [column.name for column in self.columns]

    @property
    def json_paths(self) -> dict[str, str]:
        """Where a JSON source holds each column that declares a ``path``."""
        return {column.name: column.path for column in self.columns if column.path is not None}

    @property
    def csv_headers(self) -> dict[str, str]:
        """What a CSV header line calls each column that declares a ``header``."""
        return {c.name: c.header for c in self.columns if c.header is not None}

    @property
    def source_column_names(self) -> list[str]:
        """The declared columns that are not derived, in order: what every source must provide."""
        return [column.name for column in self.columns if column.derive is None]

    def transform_function(self) -> Any:
        """The ``module:function`` named by ``transform``, imported (None if not declared)."""
        if self.transform is None:
            return None
        module, function = self.transform.split(":")
        return getattr(import_module(module), function)


def load_spec(path: Path) -> DatasetSpec:
    """The spec in the YAML file ``path``; a clear ``DatasetSpecError`` if it is not valid."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        return DatasetSpec.model_validate(document)
    except (yaml.YAMLError, ValidationError) as error:
        raise DatasetSpecError(f"dataset file {path} is not a valid spec:\n{error}") from error


def load_specs(directory: Path) -> list[DatasetSpec]:
    """Every ``*.yaml`` spec in ``directory``, in name order; names must be unique."""
    specs = [load_spec(path) for path in sorted(directory.glob("*.yaml"))]
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DatasetSpecError(f"datasets declared twice in {directory}: {repeated}")
    return specs
