"""load_batches: validate everything first, then upsert in one transaction (SPEC 3)."""

from __future__ import annotations

import codecs
import json
from datetime import date

import pytest
from django.db import DatabaseError

from allocation import models as orm
from allocation import services
from allocation.management import reading
from allocation.repository.batch_loads import DjangoBatchLoad
from domain.model import Product
from tests.integration.cmd_support import csv_text, fail, feed_stdin, run, write
from tests.integration.helpers import lines

pytestmark = pytest.mark.django_db

HEADER = "reference,sku,purchased_quantity,eta"
# The API's message for an invalid identifier.
BAD_IDENTIFIER = (
    "1-255 characters from letters, digits and . _ - : , starting with a letter or digit."
)


def stored() -> list[tuple]:
    return list(
        orm.Batch.objects.order_by("reference").values_list(
            "reference", "product_id", "purchased_quantity", "allocated_quantity", "eta"
        )
    )


def load(tmp_path, *rows: str, name="batches.csv", header=HEADER, **options):
    return run("load_batches", write(tmp_path, name, csv_text(header, *rows)), **options)


# -- creating and updating ----------------------------------------------------------


def test_creates_batches_and_products_and_prints_the_summary(tmp_path):
    result = load(
        tmp_path,
        "b1,RED-CHAIR,10,",
        "b2,RED-CHAIR,5,2027-01-02",
        "b3,BLUE-TABLE,0,null",
    )

    assert result.stdout == "created 3, updated 0, unchanged 0\n"
    assert result.stderr == ""
    assert stored() == [
        ("b1", "RED-CHAIR", 10, 0, None),
        ("b2", "RED-CHAIR", 5, 0, date(2027, 1, 2)),
        ("b3", "BLUE-TABLE", 0, 0, None),
    ]
    assert sorted(orm.Product.objects.values_list("sku", flat=True)) == ["BLUE-TABLE", "RED-CHAIR"]


def test_loaded_batches_read_back_through_the_api_like_batches_created_there(tmp_path, api):
    load(tmp_path, "b1,RED-CHAIR,10,", "b2,RED-CHAIR,5,2027-01-02")
    api.post(
        "/api/batches/",
        {"reference": "b0", "sku": "LAMP", "purchased_quantity": 3, "eta": None},
        format="json",
    )

    body = api.get("/api/batches/?sku=RED-CHAIR").json()

    assert [
        (b["reference"], b["status"], b["available_quantity"], b["eta"]) for b in body["results"]
    ] == [("b1", "in_stock", 10, None), ("b2", "inbound", 5, "2027-01-02")]


def test_columns_may_come_in_any_order_and_eta_may_be_left_out(tmp_path):
    load(tmp_path, "RED,7,b1", header="sku,purchased_quantity,reference")

    assert stored() == [("b1", "RED", 7, 0, None)]


def test_upserts_by_reference_counting_created_updated_and_unchanged(tmp_path):
    load(tmp_path, "b1,RED,10,", "b2,RED,5,2027-01-02", "b3,RED,7,")

    result = load(
        tmp_path,
        "b1,RED,10,",  # unchanged
        "b2,RED,5,2027-02-01",  # new eta
        "b3,RED,9,",  # new quantity
        "b4,RED,1,",  # new
    )

    assert result.stdout == "created 1, updated 2, unchanged 1\n"
    assert stored() == [
        ("b1", "RED", 10, 0, None),
        ("b2", "RED", 5, 0, date(2027, 2, 1)),
        ("b3", "RED", 9, 0, None),
        ("b4", "RED", 1, 0, None),
    ]


def test_an_eta_can_be_cleared_to_in_stock(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=5, eta=date(2027, 1, 1))

    assert load(tmp_path, "b1,RED,5,").stdout == "created 0, updated 1, unchanged 0\n"
    assert stored() == [("b1", "RED", 5, 0, None)]


def test_lowering_a_batch_below_its_allocations_applies_rule_8_like_a_patch(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.add_batch(reference="b2", sku="RED", purchased_quantity=4, eta=date(2027, 1, 1))
    services.allocate(order_id="o1", sku="RED", qty=3)
    services.allocate(order_id="o2", sku="RED", qty=5)

    result = load(tmp_path, "b1,RED,3,")

    assert result.stdout == "created 0, updated 1, unchanged 0\n"
    # o2 (allocated last) leaves first, which is enough, and no longer fits
    # anywhere (b2 has 4): backordered. o1 stays where it is.
    assert lines() == [
        ("o1", "RED", 3, "allocated", [("b1", 3)]),
        ("o2", "RED", 5, "backordered", []),
    ]
    assert stored() == [("b1", "RED", 3, 3, None), ("b2", "RED", 4, 0, date(2027, 1, 1))]


def test_a_new_batch_serves_backorders_of_its_sku(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED", qty=6)
    services.change_batch(reference="b1", purchased_quantity=2)  # o1 is backordered
    assert lines() == [("o1", "RED", 6, "backordered", [])]

    result = load(tmp_path, "b9,RED,20,2027-03-01", "x1,OTHER,5,")

    assert result.stdout == "created 2, updated 0, unchanged 0\n"
    assert lines() == [("o1", "RED", 6, "allocated", [("b9", 6)])]
    assert stored() == [
        ("b1", "RED", 2, 0, None),
        ("b9", "RED", 20, 6, date(2027, 3, 1)),
        ("x1", "OTHER", 5, 0, None),
    ]


def test_raising_a_batch_serves_backorders(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED", qty=6)
    services.allocate(order_id="o2", sku="RED", qty=4)
    # Both leave b1 (o2 first); placed again oldest first: o1 no longer fits.
    services.change_batch(reference="b1", purchased_quantity=5)
    assert lines() == [
        ("o1", "RED", 6, "backordered", []),
        ("o2", "RED", 4, "allocated", [("b1", 4)]),
    ]

    load(tmp_path, "b1,RED,10,")

    assert lines() == [
        ("o1", "RED", 6, "allocated", [("b1", 6)]),
        ("o2", "RED", 4, "allocated", [("b1", 4)]),
    ]


def test_rows_of_one_sku_needing_the_domain_are_applied_in_file_order(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED", qty=8)

    # Lowered first (o1 backordered), then new stock arrives and serves it.
    load(tmp_path, "b1,RED,1,", "b2,RED,8,")

    assert lines() == [("o1", "RED", 8, "allocated", [("b2", 8)])]
    assert stored() == [("b1", "RED", 1, 0, None), ("b2", "RED", 8, 8, None)]


def test_an_eta_change_keeps_existing_allocations_where_they_are(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED", qty=4)

    load(tmp_path, "b1,RED,10,2027-05-05")

    assert lines() == [("o1", "RED", 4, "allocated", [("b1", 4)])]
    assert stored() == [("b1", "RED", 10, 4, date(2027, 5, 5))]


# -- formats and encodings ------------------------------------------------------------


def test_loads_json_lines_with_eta_missing_null_or_a_date(tmp_path):
    path = write(
        tmp_path,
        "batches.jsonl",
        "\n".join(
            [
                json.dumps({"reference": "b1", "sku": "RED", "purchased_quantity": 3}),
                json.dumps(
                    {"reference": "b2", "sku": "RED", "purchased_quantity": "4", "eta": None}
                ),
                "",
                json.dumps(
                    {"reference": "b3", "sku": "RED", "purchased_quantity": 5, "eta": "2027-01-31"}
                ),
            ]
        )
        + "\n",
    )

    assert run("load_batches", path).stdout == "created 3, updated 0, unchanged 0\n"
    assert stored() == [
        ("b1", "RED", 3, 0, None),
        ("b2", "RED", 4, 0, None),
        ("b3", "RED", 5, 0, date(2027, 1, 31)),
    ]


def test_format_option_overrides_the_file_name(tmp_path):
    path = write(
        tmp_path, "batches.txt", '{"reference": "b1", "sku": "RED", "purchased_quantity": 1}\n'
    )

    run("load_batches", path, "--format", "jsonl")

    assert stored() == [("b1", "RED", 1, 0, None)]


def test_reads_a_bom_prefixed_crlf_csv_as_saved_by_a_spreadsheet(tmp_path):
    content = (
        codecs.BOM_UTF8
        + csv_text(HEADER, "b1,RED,10,", "b2,RED,5,2027-01-02", newline="\r\n").encode()
    )

    result = run("load_batches", write(tmp_path, "export.csv", content))

    assert result.stdout == "created 2, updated 0, unchanged 0\n"
    assert stored() == [("b1", "RED", 10, 0, None), ("b2", "RED", 5, 0, date(2027, 1, 2))]


def test_crlf_line_endings_keep_physical_line_numbers_in_errors(tmp_path):
    content = csv_text(HEADER, "b1,RED,10,", "", "b2,RED,x,", newline="\r\n")

    error, result = fail("load_batches", write(tmp_path, "b.csv", content))

    assert result.err_lines == ["line 4: purchased_quantity: A valid integer is required."]
    assert str(error) == "1 error; nothing was written."


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.csv", b""), ("header-only.csv", HEADER.encode() + b"\n"), ("empty.jsonl", b"")],
)
def test_an_empty_file_loads_nothing_and_says_so(tmp_path, name, content):
    result = run("load_batches", write(tmp_path, name, content))

    assert result.stdout == "created 0, updated 0, unchanged 0\n"
    assert stored() == []


def test_reads_standard_input_for_dash(tmp_path, monkeypatch):
    feed_stdin(monkeypatch, csv_text(HEADER, "b1,RED,10,"))

    assert run("load_batches", "-").stdout == "created 1, updated 0, unchanged 0\n"
    assert stored() == [("b1", "RED", 10, 0, None)]


def test_reads_json_lines_from_standard_input_with_format(monkeypatch):
    feed_stdin(monkeypatch, '{"reference": "b1", "sku": "RED", "purchased_quantity": 2}\n')

    run("load_batches", "-", "--format", "jsonl")

    assert stored() == [("b1", "RED", 2, 0, None)]


# -- errors: all listed, nothing written ----------------------------------------------


def test_a_bad_row_at_the_end_writes_nothing(tmp_path):
    services.add_batch(reference="old", sku="RED", purchased_quantity=1)
    good = [f"b{n:03d},SKU-{n % 7},{n},2027-01-01" for n in range(200)]

    error, result = fail(
        "load_batches", write(tmp_path, "b.csv", csv_text(HEADER, *good, "z,RED,-5,"))
    )

    assert result.err_lines == [
        "line 202: purchased_quantity: Ensure this value is greater than or equal to 0."
    ]
    assert str(error) == "1 error; nothing was written."
    assert stored() == [("old", "RED", 1, 0, None)]
    assert orm.Product.objects.count() == 1


def test_every_error_is_listed_with_its_physical_line_and_field(tmp_path):
    content = csv_text(
        HEADER,
        "b1,RED,10,",
        '"b2\nspans lines",RED,1,',  # a quoted field across lines 3-4
        ",RED,1,",
        "b4,has space,2147483648,2027-02-30",
        "b5,RED,1.5,27-01-01",
        "b6,RED,1",
        "b7,RED,+3,",
    )

    error, result = fail("load_batches", write(tmp_path, "b.csv", content))

    assert result.err_lines == [
        f"line 3: reference: {BAD_IDENTIFIER}",
        "line 5: reference: This field may not be blank.",
        f"line 6: sku: {BAD_IDENTIFIER}",
        "line 6: purchased_quantity: Ensure this value is less than or equal to 2147483647.",
        "line 6: eta: Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        "line 7: purchased_quantity: A valid integer is required.",
        "line 7: eta: Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        "line 8: row: expected 4 fields, found 3",
        "line 9: purchased_quantity: A valid integer is required.",
    ]
    assert str(error) == "9 errors; nothing was written."
    assert stored() == []


def test_an_identifier_longer_than_255_characters_is_refused(tmp_path):
    error, result = fail(
        "load_batches", write(tmp_path, "b.csv", csv_text(HEADER, f"{'r' * 256},RED,1,"))
    )

    assert result.err_lines == [
        "line 2: reference: Ensure this field has no more than 255 characters."
    ]


def test_the_same_reference_twice_in_one_file_is_an_error(tmp_path):
    content = csv_text(HEADER, "b1,RED,1,", "b2,RED,1,", "b1,RED,2,", "b2,BLUE,1,", "b1,RED,1,")

    error, result = fail("load_batches", write(tmp_path, "b.csv", content))

    assert result.err_lines == [
        "line 4: reference: the same reference as line 2",
        "line 5: reference: the same reference as line 3",
        "line 6: reference: the same reference as line 2",
    ]
    assert str(error) == "3 errors; nothing was written."
    assert stored() == []


def test_a_row_that_would_change_the_sku_of_a_batch_is_an_error(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=1)

    error, result = fail(
        "load_batches", write(tmp_path, "b.csv", csv_text(HEADER, "b2,RED,1,", "b1,BLUE,1,"))
    )

    assert result.err_lines == [
        "line 3: sku: batch b1 holds SKU RED; its SKU cannot change to BLUE"
    ]
    assert stored() == [("b1", "RED", 1, 0, None)]


def test_errors_found_by_rows_and_by_the_whole_file_come_out_in_line_order(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=1)
    content = csv_text(HEADER, "b1,BLUE,1,", "b2,RED,1,", "b3,RED,-1,", "b2,RED,1,")

    _, result = fail("load_batches", write(tmp_path, "b.csv", content))

    assert result.err_lines == [
        "line 2: sku: batch b1 holds SKU RED; its SKU cannot change to BLUE",
        "line 4: purchased_quantity: Ensure this value is greater than or equal to 0.",
        "line 5: reference: the same reference as line 3",
    ]


def test_the_listing_stops_at_100_errors_and_counts_the_rest(tmp_path):
    rows = [f"b{n},RED,-1," for n in range(250)]

    error, result = fail("load_batches", write(tmp_path, "b.csv", csv_text(HEADER, *rows)))

    assert len(result.err_lines) == 101
    assert (
        result.err_lines[0]
        == "line 2: purchased_quantity: Ensure this value is greater than or equal to 0."
    )
    assert result.err_lines[99].startswith("line 101: ")
    assert result.err_lines[100] == "... and 150 more errors"
    assert str(error) == "250 errors; nothing was written."


def test_json_lines_errors_name_the_line_and_key(tmp_path):
    content = "\n".join(
        [
            '{"reference": "b1", "sku": "RED", "purchased_quantity": 1}',
            "[1, 2]",
            '{"reference": "b2", "sku": "RED"',
            '{"reference": "b3", "sku": "RED", "purchased_quantity": 1, "colour": "red"}',
            '{"reference": 4, "sku": null, "purchased_quantity": true, "eta": 20270101}',
            '{"sku": "RED", "purchased_quantity": 2.0}',
            '{"reference": "b6", "sku": "RED", "purchased_quantity": -1, "eta": "2027-1-1"}',
        ]
    )

    error, result = fail("load_batches", write(tmp_path, "b.jsonl", content))

    assert result.err_lines == [
        "line 2: row: expected a JSON object",
        "line 3: row: not valid JSON (Expecting ',' delimiter at column 33)",
        "line 4: colour: unknown field; expected reference, sku, purchased_quantity, eta",
        "line 5: reference: Not a valid string.",
        "line 5: sku: This field may not be null.",
        "line 5: purchased_quantity: A valid integer is required.",
        "line 5: eta: Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        "line 6: reference: This field is required.",
        "line 6: purchased_quantity: A valid integer is required.",
        "line 7: purchased_quantity: Ensure this value is greater than or equal to 0.",
        "line 7: eta: Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
    ]
    assert str(error) == "11 errors; nothing was written."
    assert stored() == []


# -- files that cannot be read: one clear line ----------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "reference,sku,qty\nb1,RED,1\n",
            "line 1: header: expected the columns reference,sku,purchased_quantity,eta; "
            "missing purchased_quantity; unknown qty",
        ),
        (
            "reference,sku,purchased_quantity,eta,reference\n",
            "line 1: header: expected the columns reference,sku,purchased_quantity,eta; "
            "repeated reference",
        ),
        (
            "Reference;SKU;Qty\n",
            "line 1: header: expected the columns reference,sku,purchased_quantity,eta; "
            "missing reference, sku, purchased_quantity; unknown Reference;SKU;Qty",
        ),
        (
            f'{HEADER}\nb1,RED,1,\n"b2,RED,1,\n',
            # The record whose quote is never closed starts on line 3.
            "line 3: not valid CSV (unexpected end of data)",
        ),
        (
            f'{HEADER}\n"b1"x,RED,1,\n',
            "line 2: not valid CSV (',' expected after '\"')",
        ),
    ],
)
def test_a_file_that_is_not_the_expected_csv_says_so_in_one_line(tmp_path, content, message):
    error, result = fail("load_batches", write(tmp_path, "b.csv", content))

    assert str(error) == message
    assert result.stderr == ""
    assert stored() == []


def test_a_file_that_is_not_utf8_names_the_line_and_byte(tmp_path):
    content = csv_text(HEADER, "b1,RED,1,").encode() + "b2,CAFÉ,1,\n".encode("latin-1")

    error, _ = fail("load_batches", write(tmp_path, "b.csv", content))

    assert str(error) == "line 3: not UTF-8 text (byte 0xc9 at position 7); save the file as UTF-8"
    assert stored() == []


def test_a_utf16_file_is_named_as_such(tmp_path):
    content = csv_text(HEADER, "b1,RED,1,").encode("utf-16")

    error, _ = fail("load_batches", write(tmp_path, "b.csv", content))

    assert str(error) == (
        "line 1: the file is UTF-16, not UTF-8; save it as UTF-8 (CSV UTF-8 in a spreadsheet)"
    )


def test_an_image_is_refused_without_a_traceback(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))

    error, _ = fail("load_batches", write(tmp_path, "b.csv", png))

    assert str(error) == "line 1: not UTF-8 text (byte 0x89 at position 1); save the file as UTF-8"


def test_a_missing_file_is_one_line(tmp_path):
    error, _ = fail("load_batches", str(tmp_path / "nope.csv"))

    assert str(error) == f"cannot read {tmp_path / 'nope.csv'}: No such file or directory"


# -- dry run, verbosity, progress ------------------------------------------------------


def test_dry_run_reports_what_would_happen_and_writes_nothing(tmp_path):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED", qty=6)
    services.change_batch(reference="b1", purchased_quantity=2)
    before = (stored(), lines())

    result = load(tmp_path, "b1,RED,2,2027-01-01", "b2,RED,10,", "c1,NEW,5,", dry_run=True)

    assert result.stdout == "created 2, updated 1, unchanged 0\n"
    assert result.stderr == "dry run: rolled back, nothing was written\n"
    assert (stored(), lines()) == before
    assert not orm.Product.objects.filter(sku="NEW").exists()


def test_verbosity_0_prints_no_summary(tmp_path):
    result = load(tmp_path, "b1,RED,1,", verbosity=0)

    assert (result.stdout, result.stderr) == ("", "")
    assert stored() == [("b1", "RED", 1, 0, None)]


class _Terminal:
    """A stderr that says it is a terminal, and records what it gets."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_progress_bar_goes_to_stderr_only_on_a_terminal(tmp_path):
    from io import StringIO

    from django.core.management import call_command

    path = write(tmp_path, "b.csv", csv_text(HEADER, "b1,RED,1,"))
    terminal, stdout = _Terminal(), StringIO()

    call_command("load_batches", path, stdout=stdout, stderr=terminal)

    assert "reading" in terminal.text
    assert stdout.getvalue() == "created 1, updated 0, unchanged 0\n"
    # Not a terminal (the other tests): no bar at all.
    assert load(tmp_path, "b2,RED,1,").stderr == ""


# -- failures half-way leave the database as it was -----------------------------------


def test_a_failure_half_way_through_the_service_rows_rolls_everything_back(tmp_path, monkeypatch):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)
    services.allocate(order_id="o1", sku="RED", qty=6)
    services.change_batch(reference="b1", purchased_quantity=2)  # RED has a backorder
    before = (stored(), lines(), sorted(orm.Product.objects.values_list("sku", flat=True)))
    real_add = Product.add_batch
    calls = []

    def add_then_fail(self, batch, **kwargs):
        calls.append(batch.reference)
        if len(calls) == 2:
            raise DatabaseError("connection lost")
        return real_add(self, batch, **kwargs)

    monkeypatch.setattr(Product, "add_batch", add_then_fail)

    error, _ = fail(
        "load_batches",
        write(tmp_path, "b.csv", csv_text(HEADER, "n1,NEW,5,", "b2,RED,10,", "b3,RED,1,")),
    )

    assert str(error) == "database error: connection lost; nothing was written."
    assert calls == ["b2", "b3"]
    assert (stored(), lines(), sorted(orm.Product.objects.values_list("sku", flat=True))) == before


def test_ctrl_c_half_way_writes_nothing_and_exits_130(tmp_path, monkeypatch):
    services.add_batch(reference="b1", sku="RED", purchased_quantity=10)

    def interrupted(self, skus):
        raise KeyboardInterrupt

    # After the rows written as given, before those that go through the domain.
    monkeypatch.setattr(DjangoBatchLoad, "rows_of", interrupted)

    error, _ = fail(
        "load_batches", write(tmp_path, "b.csv", csv_text(HEADER, "b1,RED,20,", "n1,NEW,1,"))
    )

    assert str(error) == "interrupted; nothing was written."
    assert error.returncode == 130
    assert stored() == [("b1", "RED", 10, 0, None)]


def test_an_interrupt_while_reading_leaves_nothing(tmp_path, monkeypatch):
    real = reading.csv_records

    def records_then_interrupt(*args, **kwargs):
        yield from list(real(*args, **kwargs))[:2]
        raise KeyboardInterrupt

    monkeypatch.setattr(reading, "csv_records", records_then_interrupt)

    error, _ = fail(
        "load_batches",
        write(tmp_path, "b.csv", csv_text(HEADER, "b1,RED,1,", "b2,RED,1,", "b3,RED,1,")),
    )

    assert error.returncode == 130
    assert stored() == []
