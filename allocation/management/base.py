"""What the bulk commands share: streams, progress, summaries, and errors as one line.

Every failure a user can cause (a file that cannot be opened or read, rows
that break the rules, Ctrl-C, a database that goes away or stays busy) ends as a ``CommandError``:
an exit status of 1 (130 for Ctrl-C) and a message, never a traceback. The
transaction has rolled back by then, so nothing was written. Commands do not
retry transient database errors themselves (the API and the admin do, around
their short transactions); a busy database says so, and to run again.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from tqdm import tqdm

from allocation import models as orm
from allocation.management import reading
from allocation.management.reading import FORMATS, FileError, InvalidInput
from allocation.unit_of_work import classify

STDIO = "-"
ACTOR_MAX_LENGTH = orm.Event._meta.get_field("actor").max_length or 150


class BulkCommand(BaseCommand):
    """Base of the bulk commands: ``handle`` runs with user errors turned into CommandError."""

    def add_input_arguments(self, parser: CommandParser, what: str) -> None:
        parser.add_argument("file", metavar="FILE", help=f"{what}; - reads standard input")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="csv or jsonl (default: jsonl for a .jsonl or .ndjson file, else csv)",
        )

    def add_actor_argument(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--actor",
            metavar="USERNAME",
            type=_actor,
            help="who is making the change: recorded as the actor of its events (SPEC 6)",
        )

    def execute(self, *args, **options):
        self.verbosity = options.get("verbosity", 1)
        try:
            with _fewer_collections():
                return super().execute(*args, **options)
        except FileError as error:
            raise CommandError(str(error)) from None
        except InvalidInput as error:
            for line in error.errors.lines():
                self.stderr.write(line, style_func=_plain)
            raise CommandError(str(error)) from None
        except KeyboardInterrupt:
            raise CommandError("interrupted; nothing was written.", returncode=130) from None
        except DatabaseError as error:
            first = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            if classify(error) == "conflict":
                # A command is one long transaction: retrying it here would
                # redo all its work unasked. Nothing was written, so running
                # it again is safe, and the user decides when.
                raise CommandError(
                    f"database busy: {first}; nothing was written. Run the command again."
                ) from None
            raise CommandError(f"database error: {first}; nothing was written.") from None

    # -- input ---------------------------------------------------------------

    @staticmethod
    def input_format(path: str, fmt: str | None) -> str:
        if fmt:
            return fmt
        return "jsonl" if Path(path).suffix.lower() in (".jsonl", ".ndjson") else "csv"

    @contextlib.contextmanager
    def open_input(self, path: str) -> Iterator[BinaryIO]:
        if path == STDIO:
            yield sys.stdin.buffer
            return
        try:
            stream = open(path, "rb")  # closed by the with block below
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        with stream:
            yield stream

    def read_lines(self, stream: BinaryIO) -> Iterator[str]:
        """The stream's decoded lines, with a "reading" bar that ends when the reading does."""
        bar = self.progress("reading", total=self.input_size(stream), unit="B")
        try:
            yield from reading.decoded_lines(stream, bar)
        finally:
            if bar is not None:
                bar.close()

    def input_size(self, stream: BinaryIO) -> int | None:
        try:
            return os.fstat(stream.fileno()).st_size or None
        except (OSError, ValueError, AttributeError):
            return None

    # -- progress and summaries ---------------------------------------------

    def progress(self, description: str, *, total: int | None = None, unit: str = "it"):
        """A tqdm bar on stderr when stderr is a terminal (and not -v0); else None."""
        if self.verbosity < 1 or not self.stderr.isatty():
            return None
        return tqdm(
            desc=description,
            total=total,
            unit=unit,
            unit_scale=True,
            file=_RawStream(self.stderr),
            leave=False,
            mininterval=0.25,
        )

    def summary(self, text: str, *, to_stderr: bool = False) -> None:
        if self.verbosity < 1:
            return
        if to_stderr:
            self.stderr.write(text, style_func=_plain)
        else:
            self.stdout.write(text)

    # -- output --------------------------------------------------------------

    @contextlib.contextmanager
    def output(self, path: str) -> Iterator[TextIO]:
        """A text file for a report or export, published whole only if the block succeeds.

        A file is written next to its destination and renamed into place; for
        standard output the text is spooled and copied out at the end. Either
        way a failed run leaves no partial output behind.
        """
        if path == STDIO:
            with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
                yield spool
                spool.seek(0)
                while chunk := spool.read(1 << 16):
                    self.stdout.write(chunk, ending="")
                self.stdout.flush()
            return
        target = Path(path)
        try:
            handle, temporary = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent.resolve()
            )
        except OSError as error:
            raise CommandError(f"cannot write {path}: {error.strerror}") from None
        try:
            with open(handle, "w", encoding="utf-8", newline="") as out:
                yield out
            # mkstemp makes the file private (0600); the result gets the usual mode.
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


class _RawStream:
    """Stderr for tqdm, bypassing OutputWrapper's line endings and error colour."""

    def __init__(self, wrapper) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, style_func=_plain, ending="")

    def flush(self) -> None:
        self._wrapper.flush()


def _actor(value: str) -> str:
    """A username as the events store it (``Event.actor``: 1 to 150 characters)."""
    value = value.strip()
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    if len(value) > ACTOR_MAX_LENGTH:
        raise argparse.ArgumentTypeError(f"at most {ACTOR_MAX_LENGTH} characters")
    return value


def _plain(text: str) -> str:
    return text


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Allocations between two young-generation collections during a bulk run (Python's default: 700).
BULK_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cycle collector, told what a bulk run looks like.

    A run builds and drops a few thousand domain objects per group; every
    700 allocations Python looks for cycles among them, and now and then
    walks everything alive, Django's own hundreds of thousands of objects
    included. Those objects live as long as the process (``gc.freeze``), and
    the young generation is collected less often. Measured on
    ``allocate_orders`` of 100,000 lines: 1.3-1.8 s of its 7.5 s of Python
    CPU went to the collector. Both are put back afterwards (commands also
    run in-process, from tests and ``call_command``).
    """
    threshold = gc.get_threshold()
    # A process that froze objects itself keeps them as they are.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    gc.set_threshold(BULK_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        if freeze:
            gc.unfreeze()
