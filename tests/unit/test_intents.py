"""Clients' plain words in English, German, French and Spanish."""

import pytest

from dispatchd.domain.intents import Intent, read_intent


@pytest.mark.parametrize("text, intent", [
    ("Approved, thanks!", Intent("approve", True)),
    ("Approved \U0001F44D", Intent("approve", True)),
    ("Hi Ben,\nApproved.\nThanks", Intent("approve", True)),
    ("Confirmed — looks great!", Intent("approve", True)),
    ("Approuvé, merci", Intent("approve", True)),
    ("C'est validé, merci beaucoup !", Intent("approve", True)),
    ("Passt so, danke", Intent("approve", True)),
    ("Freigegeben. Vielen Dank!", Intent("approve", True)),
    ("Aprobado, gracias.", Intent("approve", True)),
    ("Todo bien, muchas gracias", Intent("approve", True)),
    ("Looks great, thanks!", Intent("approve", False)),                  # praise: asked, not guessed
    ("Sieht super aus!", Intent("approve", False)),
    ("Changes look good, thanks!", Intent("approve", False)),
    ("The new version looks great", Intent("approve", False)),
    ("Approved, but please change the headline.", Intent("revise", False)),
    ("Can you make the logo bigger?", Intent("revise", False)),
    ("Cancel this request please, we no longer need it.", Intent("cancel", True)),
    ("Bitte stornieren, wir brauchen das nicht mehr.", Intent("cancel", True)),
    ("Merci d'annuler la demande, nous n'en avons plus besoin.", Intent("cancel", True)),
    ("Por favor cancelar la solicitud, ya no la necesitamos.", Intent("cancel", True)),
    ("Any update?", Intent("status", True)),
    ("Where are we with this?", Intent("status", True)),
    ("Quand sera-t-il prêt ?", Intent("status", True)),
    ("¿Cómo va esto?", Intent("status", True)),
    ("Vielen Dank, wir sind zufrieden.", Intent("approve", True)),
    ("Nous validons, merci.", Intent("approve", True)),
    ("Bon pour accord", Intent("approve", True)),
    ("Yes, approved.", Intent("approve", True)),
    ("Thank you, this is approved.", Intent("approve", True)),
    ("Hi,\n\nWe approve the final version.", Intent("approve", True)),
    ("Approved on our side. Please go ahead and publish.", Intent("approve", True)),
    ("We're happy with it, thanks", Intent("approve", True)),
    ("Ich gebe das so frei. Danke!", Intent("approve", True)),
    ("Not approved, the colours are wrong.", Intent("revise", False)),
    ("Cambios: el titular debe ser más corto.", Intent("revise", True)),
    ("Änderungen: bitte das neue Logo verwenden", Intent("revise", True)),
    ("Modifications : le titre est trop long", Intent("revise", True)),
    ("Wie ist der Stand?", Intent("status", True)),
])
def test_plain_words(text: str, intent: Intent) -> None:
    assert read_intent(text) == intent


@pytest.mark.parametrize("text", [
    "Please also mention pillar pages.",
    "Ok",
    "Thanks!",
    "Due to the holidays we will only review it next week.",
    "We will send the logo files tomorrow.",
    "The intro does not look good yet.",
    "Please don't cancel it, we still need it.",
])
def test_messages_that_are_not_decisions(text: str) -> None:
    found = read_intent(text)
    assert found is None or not found.certain
