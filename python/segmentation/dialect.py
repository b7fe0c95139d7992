"""What kind of file the user gave, and how its CSV is written: format, encoding, separator.

Exports come from many tools: French ones write `;` with a decimal comma in
Windows-1252, Excel adds a byte-order mark or a `sep=;` line, some files are a
workbook or a Parquet file under a `.csv` name. Each is detected from the bytes, or
set with `CSV_SEP` / `CSV_ENCODING`; when the evidence is not clear the answer is one
message naming the setting to use, never a silent guess (a wrong separator would
otherwise load the whole file as one giant column).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import logging
import os
import re
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import UserError

log = logging.getLogger(__name__)

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SEPARATOR_ALIASES = {
    "comma": ",",
    "semicolon": ";",
    "tab": "\t",
    "\\t": "\t",
    "pipe": "|",
}
SAMPLE_BYTES = 1 << 20  # enough for the header and a few thousand rows
SAMPLE_RECORDS = 500
HEADER_SEARCH_RECORDS = 10  # a title line or two before the header is tolerated
CHUNK_BYTES = 1 << 22

_MAGIC = {
    b"PK\x03\x04": "a ZIP archive or an Excel workbook (.xlsx): open it and save the sheet as CSV (UTF-8)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls): open it and save the sheet as CSV (UTF-8)",
    b"%PDF": "a PDF document: export the customer table as CSV or Parquet",
    b"SQLite format 3": "a SQLite database: export the customer table as CSV or Parquet",
    b"\x28\xb5\x2f\xfd": "a Zstandard-compressed file: decompress it first",
    b"BZh": "a bzip2-compressed file: decompress it first",
}


@dataclass(frozen=True)
class CsvOptions:
    """The user's overrides (`CSV_SEP`, `CSV_ENCODING`); None means detect."""

    separator: str | None = None
    encoding: str | None = None

    @classmethod
    def from_environment(cls) -> CsvOptions:
        return cls(
            separator=parse_separator(os.environ.get("CSV_SEP", "")),
            encoding=parse_encoding(os.environ.get("CSV_ENCODING", "")),
        )


@dataclass(frozen=True)
class CsvDialect:
    """How to read one CSV file: what DuckDB is told (it sniffs nothing itself)."""

    separator: str
    encoding: str  # Python codec name of the file as found
    header: tuple[str, ...]  # column names as DuckDB is told: unique, never empty
    source_header: tuple[str, ...]  # the header as written (trimmed), for matching and messages
    skip_lines: int  # physical lines before the header (title lines, Excel's sep= line)
    compressed: bool  # gzip
    separator_source: str  # "detected", "CSV_SEP" or "sep= line"
    mixed_newlines: bool = False  # CRLF and LF in one file: DuckDB needs one kind
    sample_rows: int = 0  # rows after the header in the sniffed sample: DuckDB must read at least these

    @property
    def separator_name(self) -> str:
        return SEPARATORS.get(self.separator, repr(self.separator))

    @property
    def needs_transcoding(self) -> bool:
        return self.mixed_newlines or codecs.lookup(self.encoding).name not in ("utf-8", "utf-8-sig")


def parse_separator(value: str) -> str | None:
    """`CSV_SEP` as typed by a user: a character, or comma/semicolon/tab/pipe."""
    if value == "":
        return None
    separator = SEPARATOR_ALIASES.get(value.strip().lower(), value)
    if len(separator) != 1 or separator in '"\r\n':
        raise UserError(
            f"CSV_SEP={value!r} is not a single separator character: use e.g. CSV_SEP=';', CSV_SEP=tab "
            "or CSV_SEP=comma."
        )
    return separator


def parse_encoding(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise UserError(
            f"CSV_ENCODING={value!r} is not an encoding Python knows: use e.g. CSV_ENCODING=utf-8, "
            "CSV_ENCODING=cp1252 (Windows/Latin-1) or CSV_ENCODING=utf-16."
        ) from None


def _open_binary(path: Path, compressed: bool) -> BinaryIO:
    return gzip.open(path, "rb") if compressed else path.open("rb")


def _head(path: Path, size: int = 64) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def file_kind(path: Path) -> str:
    """'csv' or 'parquet', from the bytes first and the suffix second; else one clear error."""
    head = _head(path)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    suffix = path.suffix.lower()
    if head.startswith(b"PAR1"):
        if suffix not in PARQUET_SUFFIXES:
            log.warning("%s is a Parquet file despite its suffix %r: reading it as Parquet", path.name, path.suffix)
        return "parquet"
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise UserError(f"{path} is {what}.")
    if suffix in PARQUET_SUFFIXES:
        raise UserError(
            f"{path} is named .parquet but is not a Parquet file (it has no Parquet signature): "
            "if it is a CSV export, give it a .csv name."
        )
    is_gzip = head.startswith(b"\x1f\x8b")
    if suffix in CSV_SUFFIXES or (is_gzip and len(suffixes) == 2 and suffixes[0] in CSV_SUFFIXES):
        return "csv"
    raise UserError(
        f"{path} is neither CSV nor Parquet (suffix {path.suffix or 'none'!r}): "
        "give a .csv or .parquet file, e.g. make all DATA=customers.csv."
    )


def is_gzip(path: Path) -> bool:
    return _head(path, 2) == b"\x1f\x8b"


@dataclass
class _Scan:
    """One pass over the file's bytes: where the codec fails, which line endings occur, and
    (for a single-byte codec) how many byte pairs or triples read as UTF-8 characters."""

    error: tuple[int, str] | None = None
    crlf: int = 0
    lf: int = 0
    cr: int = 0
    utf8_sequences: int = 0

    @property
    def mixed_newlines(self) -> bool:
        return sum(1 for count in (self.crlf, self.lf, self.cr) if count) > 1


# a multi-byte UTF-8 character: in real Windows-1252 text ("Ã©", "Ã¨"…) it is next to never seen
UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _scan(path: Path, encoding: str, compressed: bool) -> _Scan:
    decoder = codecs.getincrementaldecoder(encoding)()
    name = codecs.lookup(encoding).name
    wide = name.startswith("utf-16")
    single_byte = not name.startswith("utf")
    scan = _Scan()
    offset = 0
    carry = b""
    with _open_binary(path, compressed) as handle:
        while True:
            chunk = handle.read(CHUNK_BYTES)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                scan.error = (offset + max(exc.start, 0), exc.reason)
                return scan
            if not chunk:
                scan.cr += carry == b"\r"
                return scan
            offset += len(chunk)
            if single_byte:
                scan.utf8_sequences += len(UTF8_SEQUENCE.findall(chunk))
            if not wide:  # UTF-16 is transcoded (and its line endings made uniform) anyway
                data = carry + chunk
                data, carry = (data[:-1], data[-1:]) if data.endswith(b"\r") else (data, b"")
                crlf = data.count(b"\r\n")
                scan.crlf += crlf
                scan.lf += data.count(b"\n") - crlf
                scan.cr += data.count(b"\r") - crlf


def _looks_binary(sample: bytes) -> str | None:
    if not sample or b"\x00" not in sample:
        return None
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    if max(even, odd) > len(sample) // 4 and min(even, odd) < len(sample) // 50:
        return "it looks like UTF-16 text without a byte-order mark: set CSV_ENCODING=utf-16-le (or utf-16-be)"
    controls = sum(sample.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13))
    if controls > len(sample) // 100:
        return "it holds binary data (control bytes), not text: export the customer table as CSV or Parquet"
    return None


def detect_encoding(path: Path, compressed: bool, forced: str | None) -> tuple[str, bool]:
    """(encoding, mixed line endings): UTF-8 with or without BOM, UTF-16 with BOM, else
    Windows-1252, checked on every byte (a late accented letter must not break the load)."""
    with _open_binary(path, compressed) as handle:
        sample = handle.read(SAMPLE_BYTES)
    if forced:
        scan = _scan(path, forced, compressed)
        if scan.error:
            raise UserError(
                f"{path} is not valid {forced} (byte {scan.error[0]:,}: {scan.error[1]}): check CSV_ENCODING, "
                "or leave it unset to detect UTF-8 / Windows-1252."
            )
        return forced, scan.mixed_newlines
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not sample.startswith(codecs.BOM_UTF32_LE):
        candidates = ["utf-16"]
    elif sample.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    else:
        problem = _looks_binary(sample)
        if problem:
            raise UserError(f"cannot read {path} as CSV: {problem}.")
        candidates = ["utf-8", "cp1252"]
    errors = []
    for encoding in candidates:
        scan = _scan(path, encoding, compressed)
        if scan.error is None:
            if encoding == "cp1252":
                if scan.utf8_sequences:  # UTF-8 accents beside bytes that are not UTF-8
                    raise UserError(
                        f"{path} mixes text encodings: it holds UTF-8 characters but also bytes that are not "
                        f"UTF-8 ({errors[0]}), so any reading would garble part of it. Re-export it in one "
                        "encoding (UTF-8), or set CSV_ENCODING if you know it is all one encoding."
                    )
                log.info("%s is not UTF-8: read as Windows-1252 (Latin-1); set CSV_ENCODING to override", path.name)
            return encoding, scan.mixed_newlines
        errors.append(f"{encoding} fails at byte {scan.error[0]:,}")
    raise UserError(
        f"cannot read {path}: its text encoding is not recognised ({'; '.join(errors)}). "
        "Export it as UTF-8, or set CSV_ENCODING to its encoding (e.g. CSV_ENCODING=cp850)."
    )


def _text_sample(path: Path, encoding: str, compressed: bool) -> tuple[str, bool]:
    with _open_binary(path, compressed) as handle:
        raw = handle.read(SAMPLE_BYTES + 1)
    truncated = len(raw) > SAMPLE_BYTES
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(raw[:SAMPLE_BYTES], final=not truncated)
    return text.lstrip("\ufeff"), truncated


def normalise_name(name: str) -> str:
    """Header key: case, surrounding and inner spaces and a stray BOM do not matter."""
    return re.sub(r"\s+", "_", name.replace("\ufeff", "").strip()).casefold()


@dataclass
class _Parse:
    separator: str
    records: list[tuple[int, list[str]]]  # (physical line where the record starts, fields), blank lines left out
    header_index: int = 0
    matches: int = 0

    @property
    def header(self) -> list[str]:
        return self.records[self.header_index][1] if self.records else []

    def mismatched_rows(self) -> list[tuple[int, int]]:
        """(line, fields) of the sampled rows whose field count differs from the header's."""
        width = len(self.header)
        return [(line, len(fields)) for line, fields in self.records[self.header_index + 1 :] if len(fields) != width]

    def data_rows(self) -> int:
        return max(0, len(self.records) - self.header_index - 1)


def _parse(text: str, separator: str, truncated: bool, required_keys: set[str]) -> _Parse:
    lines = io.StringIO(text, newline="")
    reader = csv.reader(lines, delimiter=separator, quotechar='"', doublequote=True, strict=False)
    records: list[tuple[int, list[str]]] = []
    line = 0
    try:
        for fields in reader:
            start = line
            line = reader.line_num
            if len(fields) > 1 or (fields and fields[0].strip()):
                records.append((start, fields))
            if len(records) >= SAMPLE_RECORDS:
                truncated = True
                break
    except csv.Error:
        truncated = True
    if truncated and len(records) > 1:
        records.pop()  # may be cut in the middle
    parse = _Parse(separator, records)
    for index, (_, fields) in enumerate(records[:HEADER_SEARCH_RECORDS]):
        matches = len({normalise_name(f) for f in fields} & required_keys)
        if matches > parse.matches:
            parse.header_index, parse.matches = index, matches
    return parse


def _unique_names(fields: Sequence[str]) -> tuple[str, ...]:
    """Header names as DuckDB will be told: blanks named by position, repeats numbered."""
    names: list[str] = []
    used: set[str] = set()
    for position, field in enumerate(fields, start=1):
        name = field.replace("\ufeff", "").strip() or f"column_{position}"
        candidate, suffix = name, 2
        while candidate.casefold() in used:
            candidate, suffix = f"{name}_{suffix}", suffix + 1
        used.add(candidate.casefold())
        names.append(candidate)
    return tuple(names)


def sniff_csv(path: Path, required: Sequence[str], options: CsvOptions | None = None) -> CsvDialect:
    """Find the encoding, separator and header line of a CSV export, or say which setting to use."""
    options = options or CsvOptions()
    compressed = is_gzip(path)
    try:
        encoding, mixed_newlines = detect_encoding(path, compressed, options.encoding)
        text, truncated = _text_sample(path, encoding, compressed)
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz
        raise UserError(f"cannot decompress {path} ({exc}): the file is damaged; copy or export it again.") from None
    if not text.strip():
        raise UserError(f"input file {path} holds no text (only blank lines): export the customer table again.")

    skip = 0
    separator, source = options.separator, "CSV_SEP"
    first_line = text.split("\n", 1)[0].rstrip("\r")
    excel_hint = re.fullmatch(r'"?sep=(.)"?', first_line.strip(), flags=re.IGNORECASE)
    if excel_hint:  # Excel's own dialect line, e.g. "sep=;"
        skip = 1
        text = text.split("\n", 1)[1] if "\n" in text else ""
        if separator is None:
            separator, source = excel_hint.group(1), "sep= line"

    required_keys = {normalise_name(c) for c in required}
    if separator is not None:
        chosen = _parse(text, separator, truncated, required_keys)
    else:
        parses = [_parse(text, candidate, truncated, required_keys) for candidate in SEPARATORS]
        chosen = _choose(path, parses, len(required_keys))
        source = "detected"
    if not chosen.records:
        raise UserError(f"input file {path} holds no text (only blank lines): export the customer table again.")

    header = chosen.records[chosen.header_index][1] if chosen.records else []
    if chosen.matches:  # without any required name, the missing-column message says more
        _check_rows_fit_header(path, chosen, source)
    skip += chosen.records[chosen.header_index][0]
    if chosen.header_index:
        title = chosen.records[0][1][0][:80] if chosen.records[0][1] else ""
        log.warning("%s: skipped %d line(s) before the header line (first: %r)", path.name, skip, title)
    dialect = CsvDialect(
        separator=chosen.separator,
        encoding=encoding,
        header=_unique_names(header),
        source_header=tuple(field.replace("\ufeff", "").strip() for field in header),
        skip_lines=skip,
        compressed=compressed,
        separator_source=source,
        mixed_newlines=mixed_newlines,
        sample_rows=chosen.data_rows(),
    )
    log.info(
        "%s: %s-separated (%s), encoding %s, %d columns",
        path.name,
        dialect.separator_name,
        source,
        encoding,
        len(dialect.header),
    )
    return dialect


def _choose(path: Path, parses: list[_Parse], required_count: int) -> _Parse:
    """The separator whose header holds the most required column names; ties only if rows agree."""
    best = max(p.matches for p in parses)
    if best == 0:
        # No separator reveals a required column: pick the most plausible split so that the
        # missing-column message lists what the header holds; it will name CSV_SEP.
        return max(parses, key=lambda p: (len(p.header) > 1 and not p.mismatched_rows(), len(p.header)))
    top = [p for p in parses if p.matches == best]
    if len(top) > 1:
        consistent = [p for p in top if len(p.header) > 1 and not p.mismatched_rows()]
        widest = max((len(p.header) for p in consistent), default=0)
        consistent = [p for p in consistent if len(p.header) == widest]
        if len(consistent) != 1:
            names = " or ".join(p.separator.replace("\t", "tab") for p in top)
            raise UserError(
                f"cannot tell the separator of {path}: its header splits as well on {names}. "
                f"Set it explicitly, e.g. CSV_SEP='{top[0].separator}'."
            )
        return consistent[0]
    return top[0]


def _check_rows_fit_header(path: Path, parse: _Parse, source: str) -> None:
    """Refuse a split where most rows disagree with the header: the separator is wrong."""
    rows = parse.data_rows()
    mismatched = parse.mismatched_rows()
    if rows == 0 or len(mismatched) * 2 <= rows:
        return  # a few ragged rows are quarantined one by one, not a reason to refuse the file
    line, fields = mismatched[0]
    how = "set with CSV_SEP" if source == "CSV_SEP" else "detected"
    raise UserError(
        f"{path}: with the {how} separator {SEPARATORS.get(parse.separator, repr(parse.separator))} "
        f"the header has {len(parse.header)} fields but {len(mismatched)} of the first {rows} rows do not "
        f"(line {line + 1} has {fields}). Values containing the separator must be quoted; if the separator "
        "is another character, set CSV_SEP (e.g. CSV_SEP=';')."
    )


def utf8_copy(path: Path, dialect: CsvDialect, directory: Path, normalise_newlines: bool = False) -> Path:
    """Transcode to a UTF-8 temporary file DuckDB can read (it has no built-in Windows-1252).

    With `normalise_newlines`, every line ending (CRLF, CR, LF, mixed in one file)
    becomes LF, line breaks inside quoted values included: DuckDB expects one kind.
    """
    target = directory / "input.utf8.csv"
    with (
        _open_binary(path, dialect.compressed) as source,
        io.TextIOWrapper(source, encoding=dialect.encoding, newline=None if normalise_newlines else "") as text,
        target.open("w", encoding="utf-8", newline="") as out,
    ):
        shutil.copyfileobj(text, out, CHUNK_BYTES)
    return target
