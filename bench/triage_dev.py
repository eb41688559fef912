"""dispatchd's own development examples for the triage model, and a quick measure on them.

These are what the model's settings (regularisation, threshold, margin) were chosen on; an
evaluation set written by someone else is only ever used to measure, never to tune.

    .venv/bin/python -m bench.triage_dev            # day one (rules only) and after a history

It builds a history of well-formed requests and a set of free-form ones (vague subjects, English
and German, mixed and out-of-scope mail that should stay in triage) from phrase pools, trains
through ``fitting`` exactly as ``flows/training`` does, and prints right / triage / wrong.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from dispatchd.domain.triage import OUT_OF_SCOPE, decide
from dispatchd.domain.triage_text import RequestText
from dispatchd.fitting import Example, cross_validate, fit
from dispatchd.flows.training import lexicon_of, rule_examples, with_vague_twins
from dispatchd.rulebook import load_rulebook

CORES = {
    "Content": [
        "we need a blog article about remote work trends", "could you write copy for our summer campaign emails",
        "please prepare the text for the new services page", "we want an interview article with our CEO",
        "can you draft a newsletter announcing the price changes", "need ghostwriting for two guest posts",
        "the product pages need fresh descriptions for the new range", "write a short story for our customer magazine",
        "could you write the job ad for a marketing manager", "we need website texts for the new careers section",
        "ein Blogbeitrag über Trends im Homeoffice wäre toll", "bitte Texte für die Sommerkampagne schreiben",
        "wir brauchen den Text für die neue Leistungsseite", "ein Interview mit unserer Geschäftsführerin als Artikel",
        "könnt ihr einen Newsletter zu den Preisänderungen texten", "Stellenanzeige für eine Marketingmanagerin formulieren",
        "wir brauchen Werbetexte für die Broschüre", "a long-form guide on choosing the right insurance",
        "SEO texts for our ten city landing pages", "Artikel für das Kundenmagazin, etwa zwei Seiten",
    ],
    "Design": [
        "we need a new banner for the autumn promotion", "could you make an illustration for the homepage header",
        "please design the cover of our e-book", "we need a set of Instagram story templates",
        "can you design a booth wall for the exhibition", "the menu card for our restaurant needs a fresh look",
        "please create a visual identity for the new podcast", "we need a trade show brochure layout",
        "can you make some mockups of the app screens", "design a certificate template for our course graduates",
        "wir brauchen ein Banner für die Herbstaktion", "bitte eine Illustration für den Header der Startseite",
        "könnt ihr das Cover unseres E-Books gestalten", "Vorlagen für Instagram-Stories in unserem Look",
        "Messewand für den Stand gestalten", "neues Design für die Speisekarte", "Logo für den neuen Podcast entwerfen",
        "Broschüre für die Messe layouten", "Entwürfe für die App-Screens", "Urkundenvorlage für die Kursabsolventen gestalten",
    ],
    "Technical": [
        "the checkout throws an error when customers pay by card", "our website is down since an hour",
        "the search on the site returns nothing", "please install the Facebook pixel on all pages",
        "forms on the site are not submitting", "can you migrate the site to the new hosting",
        "the sitemap is missing pages and Google reports crawl errors", "the booking plugin breaks the page layout on mobile",
        "we need an API integration with our inventory system", "the password reset email never arrives",
        "der Checkout bricht bei Kartenzahlung mit einem Fehler ab", "die Webseite ist seit einer Stunde nicht erreichbar",
        "die Suche auf der Seite liefert keine Ergebnisse", "bitte das Facebook-Pixel auf allen Seiten einbauen",
        "Formulare lassen sich nicht absenden", "Umzug der Website zum neuen Hoster",
        "in der Search Console gibt es Crawling-Fehler", "das Buchungs-Plugin zerschießt das Layout auf dem Handy",
        "Schnittstelle zu unserem Warenwirtschaftssystem", "die E-Mail zum Zurücksetzen des Passworts kommt nie an",
    ],
    "Strategy": [
        "we would like to discuss our positioning for next year", "can we book a session about our brand strategy",
        "we need a plan for growing our newsletter audience", "could you help us decide which markets to target",
        "let's talk about the campaign roadmap for Q3", "we want advice on pricing communication",
        "please propose a channel mix for the product launch", "a workshop on our customer journey would help",
        "can you audit our marketing and recommend priorities", "we need a communication concept for the rebrand",
        "wir möchten unsere Positionierung fürs nächste Jahr besprechen", "können wir einen Termin zur Markenstrategie machen",
        "wir brauchen einen Plan, um mehr Newsletter-Abonnenten zu gewinnen", "welche Märkte sollen wir angehen? Eure Einschätzung bitte",
        "lasst uns über die Kampagnenplanung für Q3 sprechen", "Beratung zur Kommunikation unserer Preise",
        "Vorschlag für den Kanal-Mix zum Produktlaunch", "Workshop zur Customer Journey",
        "Analyse unseres Marketings mit Empfehlungen", "Kommunikationskonzept für das Rebranding",
    ],
    "Revision": [
        "the brochure you sent needs a few corrections", "please change the colours in the banner you delivered",
        "some changes to the article draft: shorten it by a third", "the logo proposal is close, but the font should be bolder",
        "on the flyer you sent, the date is wrong", "could you rework the second slide of the deck you delivered",
        "feedback on the newsletter draft: the subject line needs work", "please fix the spelling mistakes in the delivered copy",
        "the infographic you made has an outdated figure, please update it", "we'd like another round of edits on the landing page text",
        "die gelieferte Broschüre braucht ein paar Korrekturen", "bitte im gelieferten Banner die Farben ändern",
        "Änderungen am Artikelentwurf: bitte um ein Drittel kürzen", "der Logo-Entwurf ist fast gut, die Schrift sollte kräftiger sein",
        "auf dem Flyer ist das Datum falsch", "bitte die zweite Folie der gelieferten Präsentation überarbeiten",
        "Feedback zum Newsletter-Entwurf: die Betreffzeile passt noch nicht", "bitte die Rechtschreibfehler im gelieferten Text korrigieren",
        "in der Infografik ist eine Zahl veraltet, bitte aktualisieren", "noch eine Korrekturschleife für den Landingpage-Text",
    ],
}
OUT = [
    "can you send a copy of the last invoice", "just wanted to say thank you for the great work",
    "when is our next payment due", "we moved offices, here is our new postal address",
    "is Anna still working with you", "please unsubscribe me", "könnt ihr mir die letzte Rechnung schicken",
    "wollte nur Danke sagen für die tolle Arbeit", "wann ist die nächste Zahlung fällig", "wir sind umgezogen, hier die neue Adresse",
]
GREETINGS = ["Hi {name},", "Hello {name},", "Hi team,", "Dear {name},", "Hallo {name},", "Hi,", "", "Hey {name}!"]
SIGNOFFS = ["Thanks,\nJo", "Best regards\nSam Miller\nMarketing Lead", "Cheers,\nAlex", "Viele Grüße\nJana",
            "LG Tom", "Thanks!", "Mit freundlichen Grüßen\nDr. Petra Schmidt\nGeschäftsführung"]
FILLERS = ["", "It would be great to have it by next week.", "Let me know if you need anything else.",
           "Budget is as usual.", "Happy to jump on a call if needed.", "Danke euch!", "Bis Ende des Monats wäre super."]
# Context that names other kinds of work in passing (real mail does), and quoted earlier threads.
CONTEXT = ["Our website relaunch went well, thanks again.", "The new logo is getting great feedback.",
           "The blog has been busy since the last article.", "We had our strategy offsite last week.",
           "The flyers from last month were a hit.", "Unser Website-Relaunch lief super.",
           "Das neue Logo kommt gut an.", "Letzte Woche hatten wir unseren Strategietag.", "", "", ""]
QUOTES = ["", "", "", "\n\nOn Mon, 3 Nov 2026, Ben wrote:\n> Here is the banner draft for the website.\n> Ben",
          "\n\nAm 03.11.2026 schrieb Ana:\n> anbei der Blogartikel zur Freigabe"]
VAGUE_SUBJECTS = ["Quick request", "Hi", "Request", "Anfrage", "Small thing", "For you", "Next project", "Bitte", ""]
STAFF = {"Content": "Casey", "Design": "Ben", "Technical": "Devi", "Strategy": "Morgan", "Revision": "Ben"}
CLIENTS = ["Acme", "Globex", "Initech", "Umbrella"]


def _email(rng: random.Random, core: str, label: str, vague: bool) -> RequestText:
    name = STAFF.get(label, "team")
    greeting = rng.choice(GREETINGS).format(name=name)
    body = "\n".join(x for x in (greeting, rng.choice(CONTEXT), core[0].upper() + core[1:] + ".",
                                 rng.choice(FILLERS), "", rng.choice(SIGNOFFS)) if x is not None) + rng.choice(QUOTES)
    subject = rng.choice(VAGUE_SUBJECTS) if vague else core[:50]
    return RequestText(subject=subject, body=body, client=rng.choice(CLIENTS))


def dev_set(seed: int = 7) -> tuple[list[Example], list[tuple[RequestText, str | None]]]:
    """(history of well-formed requests, free-form requests with the expected type or None)."""
    rng = random.Random(seed)
    history, free = [], []
    for label, cores in CORES.items():
        for i, core in enumerate(cores):
            if i % 2 == 0:
                for n in range(6):
                    text = _email(rng, core, label, vague=False)
                    history.append(Example(text, label, 1.0, f"task:{label}{i}{n}", "subject"))
            else:
                free.append((_email(rng, core, label, vague=rng.random() < 0.5), label))
    for core in OUT:
        free.append((_email(rng, core, "", vague=True), None))
    for _ in range(12):
        a, b = rng.sample(list(CORES), 2)
        mixed = f"{rng.choice(CORES[a])}, and also {rng.choice(CORES[b])}"
        free.append((_email(rng, mixed, "", vague=True), None))
    return history, free


def score(model, free, threshold: float, margin: float) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    right = triage = wrong = 0
    for text, expected in free:
        verdict = decide(model.predict(text), threshold, margin)
        routed = verdict.route_as.type if verdict.route_as else None
        if routed is None:
            triage += 1
            right += expected is None
        elif routed == expected:
            right += 1
        else:
            wrong += 1
    n = len(free)
    return right / n, triage / n, wrong / n


def main() -> int:
    rulebook = load_rulebook(Path(__file__).resolve().parents[1] / "rules")
    history, free = dev_set()
    settings = rulebook.triage_model
    for title, examples in (("day one (rules only)", rule_examples(rulebook)),
                            ("after history", rule_examples(rulebook) + with_vague_twins(history))):
        started = time.perf_counter()
        lexicon = lexicon_of(rulebook)
        measured, temperature = cross_validate(examples, {}, lexicon=lexicon)
        model = fit(examples, {}, 1, temperature, lexicon)
        took = time.perf_counter() - started
        right, triage, wrong = score(model, free, settings.threshold, settings.margin)
        print(f"{title:22} examples {len(examples):4}  cv {measured.accuracy:.3f}  T {temperature:.2f}  "
              f"right {right:.1%}  triage {triage:.1%}  wrong {wrong:.1%}  ({took:.1f} s)")
        for threshold in (0.5, 0.6, 0.7, 0.8):
            r, t, w = score(model, free, threshold, settings.margin)
            print(f"    threshold {threshold:.2f}: right {r:.1%} triage {t:.1%} wrong {w:.1%}")
    print(f"{len(free)} free-form requests, {sum(e is None for _, e in free)} of them for triage; "
          f"classes incl. {OUT_OF_SCOPE!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
