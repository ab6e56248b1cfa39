"""`python launch.py data ...`: list, check, add and remove datasets of dataset_info.json.

    data list                          table of datasets: name, shape, records, file, sha1
    data check NAME                    validate every record; exit 1 when problems are found
    data add NAME FILE [--columns prompt=q,response=a] [--ranking] [--formatting sharegpt] [--replace]
                                       (without --columns, common column names are mapped by themselves)
    data remove NAME [--delete-file]
    (every command takes --dataset_dir DIR, default: data)

User errors print one line `error: ...` to stderr and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from core.data.loaders import DATA_EXTENSIONS
from core.data.registry import (
    FORMATTINGS,
    add_dataset,
    check_dataset,
    columns_to_register,
    detect_shape_and_columns,
    load_registry,
    remove_dataset,
)
from core.errors import UserError

DEFAULT_DATASET_DIR = "data"
MAPPING_ORDER = ("prompt", "query", "response", "history", "system", "messages", "chosen", "rejected", "kto_tag")


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage and exits; we want the one-line error of every other failure.
    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message}; see `python launch.py data --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="launch.py data", description="Manage the datasets of dataset_info.json.")
    parser.add_argument("--dataset_dir", default=DEFAULT_DATASET_DIR, help="folder holding dataset_info.json (default: data)")
    # Subcommands accept --dataset_dir too; SUPPRESS keeps them from resetting the value given before.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataset_dir", default=argparse.SUPPRESS, help="folder holding dataset_info.json (default: data)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", parents=[common], help="list the registered datasets")

    check = sub.add_parser("check", parents=[common], help="validate every record of a dataset")
    check.add_argument("name")

    add = sub.add_parser("add", parents=[common], help="validate a file, copy it into the dataset dir and register it")
    add.add_argument("name", help="name for the dataset (letters, digits, _ . -)")
    add.add_argument("file", help=f"the data file ({', '.join(DATA_EXTENSIONS)})")
    add.add_argument("--columns", default=None,
                     help="column mapping, e.g. prompt=question,response=answer (default: common names such as "
                          "instruction/question/问题, input/context/补充, output/answer/答案, history/历史 are "
                          "mapped by themselves)")
    add.add_argument("--ranking", action="store_true", default=None,
                     help="pairwise data: the response is [chosen, rejected] (default: detected without --columns)")
    add.add_argument("--formatting", choices=FORMATTINGS, default=None,
                     help="record layout (default: detected without --columns, else alpaca)")
    add.add_argument("--replace", action="store_true", help="overwrite a dataset of the same name")

    remove = sub.add_parser("remove", parents=[common], help="unregister a dataset")
    remove.add_argument("name")
    remove.add_argument("--delete-file", dest="delete_file", action="store_true", help="also delete its file when no other dataset uses it")
    return parser


def parse_columns(text: Optional[str]) -> Optional[dict[str, str]]:
    """'prompt=q,response=a' -> {'prompt': 'q', 'response': 'a'}."""
    if not text:
        return None
    columns = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"--columns item '{item}' must look like key=column, e.g. --columns prompt=question,response=answer")
        columns[key.strip()] = value.strip()
    return columns


def cmd_list(dataset_dir: str) -> int:
    registry = load_registry(dataset_dir)
    if not registry:
        print(f"no datasets in {dataset_dir}; add one with `python launch.py data add NAME FILE`")
        return 0
    rows = [("name", "shape", "records", "file", "sha1")]
    for name, spec in registry.items():
        if spec.source == "hub":  # counting would mean downloading it
            rows.append((name, spec.shape, "-", spec.location, "none"))
            continue
        report = check_dataset(dataset_dir, name, max_errors=1)
        # "missing": the file could not be read at all; "invalid": some records are refused.
        records = ("missing" if report.records is None else "invalid") if report.errors else str(report.records)
        rows.append((name, spec.shape, records, spec.location, report.sha1_status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_check(dataset_dir: str, name: str) -> int:
    report = check_dataset(dataset_dir, name)
    records = "?" if report.records is None else report.records
    print(f"dataset {name}: {report.shape}, {records} records, source {report.source} ({report.location}), sha1 {report.sha1_status}")
    if report.sha1_status == "mismatch":
        print("warning: file_sha1 does not match; the file changed since it was registered")
    for problem in report.errors:
        print(f"problem: {problem}")
    if report.errors:
        print(f"{len(report.errors)} problem(s) shown; fix them and run `python launch.py data check {name}` again", file=sys.stderr)
        return 1
    print("ok: every record is valid")
    return 0


def proposed_mapping(file: str, formatting: Optional[str], ranking: Optional[bool]) -> tuple[Optional[dict[str, str]], str, bool]:
    """(columns, formatting, ranking) for `data add` without --columns: the mapping the web UI's
    upload proposes (core.data.registry.COLUMN_SYNONYMS), for the formatting and ranking given or
    detected."""
    shape, _, proposed, found_ranking, found_formatting = detect_shape_and_columns(file)
    if formatting not in (None, found_formatting):  # another layout than the file's: map nothing
        return None, formatting, bool(ranking)
    columns = {key: proposed[key] for key in MAPPING_ORDER if key in proposed}
    if columns:
        print("mapped columns: " + ", ".join(f"{key}={column}" for key, column in columns.items())
              + " (pass --columns to choose others)")
    columns = columns_to_register(columns, shape, found_formatting, found_ranking)
    return columns or None, found_formatting, found_ranking if ranking is None else ranking


def cmd_add(args: argparse.Namespace) -> int:
    columns = parse_columns(args.columns)
    formatting, ranking = args.formatting or "alpaca", bool(args.ranking)
    if columns is None and Path(args.file).is_file():
        columns, formatting, ranking = proposed_mapping(args.file, args.formatting, args.ranking)
    spec = add_dataset(
        args.dataset_dir, args.name, args.file, columns=columns,
        ranking=ranking, formatting=formatting, replace=args.replace,
    )
    report = check_dataset(args.dataset_dir, args.name, max_errors=1)
    print(f"added dataset '{spec.name}' ({spec.shape}, {report.records} records) as {args.dataset_dir}/{spec.file_name}, sha1 {spec.file_sha1}")
    return 0


def cmd_remove(dataset_dir: str, name: str, delete_file: bool) -> int:
    deleted = remove_dataset(dataset_dir, name, delete_file=delete_file)
    print(f"removed dataset '{name}'" + (f" and deleted {deleted}" if deleted else ""))
    return 0


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            return cmd_list(args.dataset_dir)
        if args.command == "check":
            return cmd_check(args.dataset_dir, args.name)
        if args.command == "add":
            return cmd_add(args)
        return cmd_remove(args.dataset_dir, args.name, args.delete_file)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
