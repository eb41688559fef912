"""Every table that can hold personal data is in store/personal.PERSONAL_DATA: forget and export
find a person only where the registry says to look."""

from __future__ import annotations

import re

from sqlmodel import SQLModel

from dispatchd.store import tables  # noqa: F401
from dispatchd.store.personal import NOT_PERSONAL, PERSONAL_DATA, entry_for

# Column names that hold an address, a name or someone's words.
PERSONAL_LOOKING = re.compile(r"(sender|recipient|address|email|actor|attendee|name|body|detail|description|"
                              r"subject|scope|payload|phone|comment|note|text|by)s?$")
# Tables without anything about a person (ids, counters, the model's arrays, our own settings).
WITHOUT_PERSONAL_DATA = {"meta", "mailbox_cursor", "sla_notice", "triage_model", "lifecycle_run", "blob_release",
                         "integration_delivery", "integration_destination"}


def covered(table: str, column: str) -> bool:
    entry = entry_for(table)
    if entry is None:
        return False
    return column in {*entry.equals, *entry.mentions, *entry.replace, *entry.erase, *entry.blobs} or entry.delete


def test_every_column_that_looks_personal_is_in_the_registry() -> None:
    missing = [f"{t.name}.{c.name}" for t in SQLModel.metadata.sorted_tables if t.name not in WITHOUT_PERSONAL_DATA
               for c in t.columns if PERSONAL_LOOKING.search(c.name) and (t.name, c.name) not in NOT_PERSONAL
               and not covered(t.name, c.name)]
    assert not missing, (f"personal data forget/export would miss: {missing}. Add a PersonalData entry (or "
                         f"its columns) in dispatchd/store/personal.py, or list the column in NOT_PERSONAL.")


def test_every_entry_names_real_tables_and_columns_in_a_usable_order() -> None:
    seen: set[str] = set()
    for entry in PERSONAL_DATA:
        table = SQLModel.metadata.tables[entry.table]
        for column in (*entry.equals, *entry.mentions, *entry.replace, *entry.erase, *entry.blobs,
                       *(c for c, _t in entry.belongs)):
            assert column in table.c, f"{entry.table}.{column}"
        assert all(target in seen for _c, target in entry.belongs), f"{entry.table}: belongs to a table below it"
        seen.add(entry.table)
