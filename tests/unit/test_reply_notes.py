"""What counts as a 'yes' to a question dispatchd asked."""

import pytest

from dispatchd.flows.reply_notes import is_yes


@pytest.mark.parametrize("text", ["Yes", "yes.", "YES!", "Yes please", "yes, please", "Y", "yep", "Ja", "Ja, bitte",
                                  "Oui", "Oui merci", "Sí", "si", "Correct", "Yes, thanks", "ok", "Go ahead"])
def test_yes(text: str) -> None:
    assert is_yes(text)


@pytest.mark.parametrize("text", ["", "No", "Yes, but change the intro", "yesterday", "Yes and no",
                                  "nein", "Non merci", "Yes, start\nand review", "Not yet"])
def test_not_yes(text: str) -> None:
    assert not is_yes(text)
