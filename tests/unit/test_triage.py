"""The triage model's pure parts: features, prediction with reasons, thresholds, serialisation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dispatchd.domain.models import Request
from dispatchd.domain.routing import TriageSettings
from dispatchd.domain.triage import (OUT_OF_SCOPE, SHORT_TEXT_WORDS, Guess, Prediction, TriageModel, audit_reason, decide,
                                     short_text_scale, suggestion_lines)
from dispatchd.domain.triage_text import (MAX_BODY_CHARS, Lexicon, RequestText, asks, clean_body, feature_weight, says_separate,
                                          nothing_asked, segments, tokens)
from dispatchd.fitting import Example, fit
from dispatchd.flows.training import rule_examples
from dispatchd.flows.triage import eligible, request_text
from dispatchd.rulebook import load_rulebook
from dispatchd.store.triage import dump_model, load_model

PROJECT = Path(__file__).resolve().parents[2]
RULES = load_rulebook(PROJECT / "rules")


@pytest.fixture(scope="module")
def model() -> TriageModel:
    return fit(rule_examples(RULES), {}, 7)


@pytest.mark.parametrize(("body", "text", "greeted"), [
    ("Hi Ben,\nCould we get a new banner?\n\nThanks,\nJo", "Could we get a new banner?", "ben"),
    ("Hallo Anna, bitte den Flyer gestalten.\nViele Grüße\nTom", "bitte den Flyer gestalten.", "anna"),
    ("Hi team,\nThe site is down.\n-- \nJo Smith\nAcme Corp", "The site is down.", None),
    ("Please fix the form.\n\nOn Mon, 2 Dec 2026, Ben <ben@agency.test> wrote:\n> old text", "Please fix the form.", None),
    ("Bitte anrufen.\n\nAm 01.12.2026 schrieb Ben:\n> alter Text", "Bitte anrufen.", None),
    ("New logo please\n-----Original Message-----\nFrom: x", "New logo please", None),
    ("Dear Morgan\nLet's plan Q3.\nBest regards\nSam", "Let's plan Q3.", "morgan"),
    ("", "", None),
    # A signature without a sign-off: the name line and everything after it.
    ("Hi!\nThanks to everyone on the campaign.\nDrinks on us!\n\nMegan\n\nMegan Price | Social & Community",
     "Thanks to everyone on the campaign.\nDrinks on us!", None),
    ("Hallo Ana,\nbitte den Text kürzen.\nT. Kessler\nGeschäftsführer\nBrauhausgasse 3", "bitte den Text kürzen.", "ana"),
    ("Please fix the form.\nSarah Lindqvist, Marketing Director\nGlobex", "Please fix the form.", None),
    ("Two things:\nThanks Ana, this is close!\nSwap the photo.", "Two things:\nThanks Ana, this is close!\nSwap the photo.", None),
    ("Fix the form.\nThis message may contain confidential information.", "Fix the form.", None),
    ("Bonjour Ben,\nMerci pour les visuels.", "Merci pour les visuels.", "ben"),
    ("Hola Ana:\nNecesitamos traducir la web.", "Necesitamos traducir la web.", "ana"),
    ("Hi Dev and Ana,\nTwo things.", "Two things.", "dev"),
    # A forward with a line of its own reads on into the forwarded message, its headers,
    # greeting and signature aside; one that says enough itself does not.
    ("Can you do this?\nP.\n\nBegin forwarded message:\n\n> From: Susan <s@globex.example>\n> Subject: brochure\n>\n"
     "> Priya,\n> I need a one-pager laid out, A4.\n>\n> Susan Clarke\n> Marketing Director",
     "Can you do this?\nI need a one-pager laid out, A4.", None),
    ("Hi Ana, see below.\n\n---------- Forwarded message ---------\nFrom: Richard <r@tyler-outdoor.co.uk>\n"
     "Date: Mon, 7 Apr 2025\nSubject: blog\n\nHannah,\nA blog series on wild camping please.\n\nR",
     "see below.\nA blog series on wild camping please.", "ana"),
    ("FYI, can you take this?\n\n-------- Weitergeleitete Nachricht --------\nBetreff: Etiketten\nDatum: 2. Juni\n\n"
     "Hallo Martina,\nwir brauchen neue Etiketten fürs Helle.\nViele Grüße\nSepp\nDiese E-Mail enthält vertrauliche Informationen.",
     "FYI, can you take this?\nwir brauchen neue Etiketten fürs Helle.", None),
    ("We need the attached flyer redesigned for spring: new photos, the new logo, and a QR code to the shop. "
     "The print run is the same as last year, please quote.\n---------- Forwarded message ---------\nFrom: x\n\nold",
     "We need the attached flyer redesigned for spring: new photos, the new logo, and a QR code to the shop. "
     "The print run is the same as last year, please quote.", None),
])
def test_clean_body_keeps_only_the_request(body: str, text: str, greeted: str | None) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, cleaned.greeted) == (text, greeted)


def test_a_thanks_in_the_first_line_is_not_a_signature() -> None:
    assert clean_body("Thanks for the draft, a few changes please.\nShorten the intro.").text.count("\n") == 1


def test_tokens_carry_subject_type_word_client_and_greeting() -> None:
    found = tokens(RequestText("Spring banner", "Hi Ben,\nthree sizes please", "Acme", "layout"),
                   {"ben": ("design",)})
    assert {"s:spring", "w:banner", "b:spring banner", "t:layout", "client:acme", "greet:ben",
            "greetq:design"} <= set(found)
    assert "c: ban" in found and "w:please" not in found, "character n-grams inside words; stopwords left out"
    assert found.count("s:layout") == 2, "an unknown type word weighs like a subject word, twice"


def test_huge_mail_is_read_only_at_its_start() -> None:
    huge = "banner " * 100_000
    assert len(clean_body(huge).text) <= MAX_BODY_CHARS
    assert len(tokens(RequestText("", huge))) < 2000


def test_segments_split_sentences_and_also_clauses() -> None:
    parts = segments(RequestText("", "We need a new logo for the brand, and also please fix the contact form."))
    assert [p.body for p in parts] == ["We need a new logo for the brand,", "please fix the contact form."]


def test_sentences_that_only_mention_other_work_are_no_segments() -> None:
    text = RequestText("", "Our website relaunch went well, thanks again.\nCould you write a blog post about it?")
    assert [p.body for p in segments(text)] == ["Could you write a blog post about it?"]


def test_asking_sentences_count_twice_and_the_lexicon_pools_a_types_words() -> None:
    lexicon = Lexicon((("Design", ("banner", "logo")), ("Technical", ("website",))))
    found = tokens(RequestText("", "Our website is fine.\nPlease make a banner and a logo."), lexicon=lexicon)
    assert found.count("w:banner") == 2 and found.count("w:website") == 1
    assert found.count("x:Design") == 2 and found.count("x:Technical") == 1


def test_prediction_is_sklearns_arithmetic(model: TriageModel) -> None:
    """The pure prediction (no sklearn) gives the probabilities sklearn's own pipeline gives."""
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from sklearn.preprocessing import normalize

    examples = rule_examples(RULES)
    vectorizer = TfidfVectorizer(analyzer=lambda e: tokens(e.text, {}), sublinear_tf=True, dtype=np.float32,
                                 vocabulary=model.vocabulary, norm=None)  # the features that fit kept
    weights = np.array([feature_weight(t) for t in model.vocabulary])
    assert set(weights) > {1.0}, "some kinds of feature weigh less than words"

    def vectors(texts: list[Example]) -> Any:
        return normalize(csr_matrix(vectorizer.transform(texts).multiply(weights)))  # float64, sklearn's own steps

    vectorizer.fit(examples)
    from dispatchd.fitting import REGULARISATION, _balanced

    classifier = LogisticRegression(C=REGULARISATION, solver="newton-cg", tol=1e-4, max_iter=100)
    classifier.fit(vectors(examples), [e.label for e in examples], sample_weight=_balanced(examples))
    sample = Example(RequestText("Banner for the spring sale", "Hi, three sizes for Instagram please."), "Design")
    prediction = model.predict(sample.text)
    # sklearn's scores, trusted as far as the text's known words go, at the model's temperature
    scores = classifier.decision_function(vectors([sample]))[0] * short_text_scale(prediction.evidence)
    scores = np.exp(scores / model.temperature - (scores / model.temperature).max())
    expected = dict(zip(classifier.classes_, scores / scores.sum()))
    got = {g.type: g.confidence for g in prediction.guesses} | {OUT_OF_SCOPE: prediction.out_of_scope}
    # Two newton-cg fits (float32 there, float64 here) stop within ~0.01 of each other's scores.
    assert got == pytest.approx(expected, abs=5e-3)


@pytest.mark.parametrize(("subject", "body", "expected"), [
    ("Spring sale", "Hi Ben, could we get a new banner and a flyer for the spring sale?", "Design"),
    ("Website", "The contact form on our website shows an error and does not send.", "Technical"),
    ("Blog", "Could you write a blog article of about 800 words on remote work?", "Content"),
    ("Termin", "Können wir einen Termin zur Strategie und Planung fürs nächste Jahr vereinbaren?", "Strategy"),
    ("Korrektur", "Bitte im gelieferten Flyer den Tippfehler korrigieren und die Farben ändern.", "Revision"),
])
def test_day_one_model_reads_plain_requests_with_reasons(model: TriageModel, subject: str, body: str,
                                                         expected: str) -> None:
    prediction = model.predict(RequestText(subject, body, "Acme"))
    assert prediction.best is not None and prediction.best.type == expected
    assert prediction.best.words, "the words behind the guess are shown"


def test_the_words_behind_a_guess_are_its_own(model: TriageModel) -> None:
    best = model.predict(RequestText("Spring sale", "Could we get a new banner for the spring sale?")).best
    assert best is not None and "banner" in best.words


def guesses(*pairs: tuple[str, float]) -> tuple[Guess, ...]:
    return tuple(Guess(t, c, ("w",)) for t, c in pairs)


@pytest.mark.parametrize(("prediction", "routed", "why"), [
    (Prediction(3, guesses(("Design", 0.91), ("Content", 0.05)), 0.01, 20), "Design", "classified Design (0.91)"),
    (Prediction(3, guesses(("Design", 0.69), ("Content", 0.2)), 0.01, 20), None, "below the threshold 0.70"),
    (Prediction(3, guesses(("Design", 0.72), ("Content", 0.6)), 0.0, 20), None, "mixed"),
    (Prediction(3, guesses(("Design", 0.95), ("Content", 0.02)), 0.0, 20, ("Design", "Technical")), None,
     "asks for Design and Technical"),
    (Prediction(3, guesses(("Design", 0.3), ("Content", 0.1)), 0.6, 20), None, "no request of a known type"),
    (Prediction(3, guesses(("Design", 0.99),), 0.0, 1), None, "too little text"),
    (Prediction(3, (), 0.0, 20), None, "knows no request type"),
])
def test_decide_routes_only_when_sure(prediction: Prediction, routed: str | None, why: str) -> None:
    verdict = decide(prediction, 0.7, 0.2)
    assert (verdict.route_as.type if verdict.route_as else None) == routed
    assert why in verdict.reason


def test_audit_reason_and_suggestion_lines() -> None:
    guess = Guess("Design", 0.912, ("banner", "spring sale", "resize"))
    assert audit_reason(14, guess) == 'classified Design (0.91) by triage model 14 — "banner", "spring sale", "resize"'
    verdict = decide(Prediction(14, (Guess("Design", 0.55, ("banner",)), Guess("Content", 0.3)), 0.0, 20), 0.7)
    assert suggestion_lines(verdict) == ['type Design   (55%: "banner")', "type Content   (30%)"]


def test_model_round_trips_through_npz_without_pickle(model: TriageModel) -> None:
    loaded = load_model(model.version, dump_model(model))
    text = RequestText("Banner", "A new banner for the spring sale")
    assert loaded.predict(text).guesses[0].confidence == pytest.approx(model.predict(text).guesses[0].confidence,
                                                                      abs=1e-5)
    with pytest.raises(Exception):
        load_model(1, b"not a model")


def test_arrays_that_do_not_fit_together_are_refused() -> None:
    with pytest.raises(ValueError):
        TriageModel.from_arrays(1, ("A", "B"), ("w:x",), np.ones(1), np.ones((2, 2)), np.zeros(2), 1.0)


def test_a_type_without_examples_is_never_predicted() -> None:
    types = tuple(replace(t, examples=()) if t.name == "Urgent" else t for t in RULES.types)
    mail = tuple(m for m in RULES.triage_model.example_mail if m.label != "Urgent")
    examples = rule_examples(replace(RULES, types=types, triage_model=replace(RULES.triage_model, example_mail=mail)))
    assert "Urgent" not in {e.label for e in examples}
    assert "Urgent" not in fit(examples, {}, 7).classes


def request(**changes: object) -> Request:
    values: dict[str, object] = dict(sender="bob@acme.test", client="Acme", type=None, priority=None,
                                     description="Hi Ben, a banner please", body="", subject="Hi Ben, a banner please",
                                     problems=("subject: the subject does not start with the client name",))
    values.update(changes)
    return Request(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "asked"), [
    ({}, True),
    ({"type": "Design", "problems": ()}, False),                       # an explicit known type: never overridden
    ({"client": None, "problems": ("sender: x is not a known client address",)}, False),
    ({"problems": ("type: 'layout' is not a request type we know",)}, True),
    ({"problems": ("client: bob may not file requests for Globex",)}, False),
    ({"from_staff": True}, False),
])
def test_only_a_known_clients_untyped_request_is_asked(changes: dict[str, object], asked: bool) -> None:
    assert eligible(request(**changes)) is asked


def test_an_unknown_type_word_is_read_as_evidence() -> None:
    text = request_text(request(subject="[Acme] - [layout] - Two-column case studies",
                                description="Two-column case studies",
                                problems=("type: 'layout' is not a request type we know",)))
    assert (text.subject, text.type_word) == ("Two-column case studies", "layout")


def test_threshold_settings_are_checked(tmp_path: Path) -> None:
    from dispatchd.errors import ConfigError

    for name in ("10-types.toml", "30-rules.toml"):
        (tmp_path / name).write_text((PROJECT / "rules" / name).read_text())
    (tmp_path / "20-triage.toml").write_text('[triage]\nmodel_threshold = 1.5\n')
    with pytest.raises(ConfigError, match="model_threshold"):
        load_rulebook(tmp_path)
    (tmp_path / "20-triage.toml").write_text('[triage]\nmodel_threshold = 0.85\nmodel = false\n')
    assert load_rulebook(tmp_path).triage_model == TriageSettings(False, 0.85, 0.2, ())


def test_follow_up_types_are_read_from_the_rules(tmp_path: Path) -> None:
    for name in ("10-types.toml", "30-rules.toml"):
        (tmp_path / name).write_text((PROJECT / "rules" / name).read_text())
    (tmp_path / "20-triage.toml").write_text('[triage]\nmodel_follow_up_types = ["Revision"]\n')
    assert load_rulebook(tmp_path).triage_model.follow_ups == ("Revision",)
    assert RULES.triage_model.follow_ups == ("Revision",), "the shipped rules name Revision"


@pytest.mark.parametrize(("mixed", "routed"), [
    (("Revision", "Content"), "Revision"),           # changes to a text name the text: not mixed
    (("Design", "Content"), None),                   # two kinds of new work: mixed
    (("Revision", "Design", "Content"), None),
])
def test_a_follow_up_type_beside_one_other_is_not_mixed(mixed: tuple[str, ...], routed: str | None) -> None:
    prediction = Prediction(3, guesses(("Revision", 0.95), ("Content", 0.03)), 0.0, 20, mixed, mixed_asking=mixed)
    verdict = decide(prediction, 0.7, 0.2, follow_ups=("Revision",))
    assert (verdict.route_as.type if verdict.route_as else None) == routed
    assert decide(prediction, 0.7, 0.2).route_as is None, "without follow-up types any two types are mixed"


@pytest.mark.parametrize(("asking", "routed"), [
    ((), "Revision"),                       # "- the logo is tiny on mobile", "- the button links to the old PDF"
    (("Design", "Content"), None),          # "could you also write a press release?" beside the changes
])
def test_a_change_is_mixed_only_by_sentences_that_ask(asking: tuple[str, ...], routed: str | None) -> None:
    points = ("Revision", "Design", "Technical", "Content")   # what the points of a feedback list read like
    prediction = Prediction(3, guesses(("Revision", 0.97), ("Design", 0.02)), 0.0, 30, points, asking)
    verdict = decide(prediction, 0.7, 0.2, follow_ups=("Revision",))
    assert (verdict.route_as.type if verdict.route_as else None) == routed
    new_work = replace(prediction, guesses=guesses(("Design", 0.97), ("Revision", 0.02)))
    assert decide(new_work, 0.7, 0.2, follow_ups=("Revision",)).route_as is None, \
        "for new work, list items asking for other kinds of work still make it mixed"


@pytest.mark.parametrize("text", ["We also need all the launch copy", "I'd really like a second option",
                                  "could you check the form", "Wir bräuchten auch Texte",
                                  "Bräuchten dafür die Gestaltung des Kartons"])
def test_asks_with_a_word_between_who_asks_and_the_ask(text: str) -> None:
    assert asks(text)


def test_a_point_that_names_a_fault_does_not_ask() -> None:
    assert not asks("- the logo is tiny on mobile")
    assert not asks("The 'Download brochure' button links to the old PDF (v1)")


def test_abbreviations_end_no_sentence() -> None:
    text = RequestText("", "Wir bräuchten einen Artikel (ca. 300 Wörter) und außerdem eine neue Vorlage für die Startseite.")
    assert [p.body for p in segments(text)] == ["Wir bräuchten einen Artikel (ca. 300 Wörter) und",
                                                "eine neue Vorlage für die Startseite."]


def test_evidence_counts_known_words_not_character_grams(model: TriageModel) -> None:
    forwarded = RequestText("Bewerbung", "---------- Forwarded message ---------\nFrom: x\n\nlong text about a banner")
    prediction = model.predict(forwarded)
    assert prediction.evidence < 3, "only the subject's one word is the sender's own"
    assert decide(prediction, 0.0).reason == "too little text to guess from"
    assert model.predict(RequestText("", "Please design a new banner and a poster for the shop")).evidence >= 3


def test_a_type_word_in_a_types_vocabulary_counts_as_several_hits() -> None:
    lexicon = Lexicon((("Revision", ("amends",)), ("Content", ("descriptions",))))
    found = tokens(RequestText("Product descriptions", "Please amend.", type_word="amends"), lexicon=lexicon)
    assert found.count("x:Revision") == 1 + 3 and found.count("x:Content") == 1


@pytest.mark.parametrize(("text", "hits"), [
    ("A blog post and a blog", {"Content": 2}),                    # "blog post" once (longest), then "blog"
    ("Re: the flyer", {"Revision": 1}),                            # a reply prefix
    ("Boxes: re-use the flyer", {}),                               # "re" inside a word, "boxes:" no prefix
    ("banner banner banner banner", {"Design": 3}),                 # at most three
    ("the e-book cover", {"Design": 1}),                           # "book" inside "e-book" is no hit
])
def test_lexicon_hits_whole_phrases(text: str, hits: dict[str, int]) -> None:
    lexicon = Lexicon((("Content", ("blog", "blog post")), ("Revision", ("re:",)),
                       ("Design", ("banner", "cover", "book"))))
    found = lexicon.hits(text)
    assert {name: found.count("x:" + name) for name in ("Content", "Revision", "Design") if "x:" + name in found} == hits


def test_a_type_word_of_the_best_guess_is_not_second_guessed_as_mixed() -> None:
    lexicon = Lexicon((("Design", ("layout", "banner", "logo")), ("Technical", ("website", "form", "broken"))))
    examples = [Example(RequestText(t), label) for label, texts in (
        ("Design", ["a new banner", "logo ideas", "layout for the page", "banner and logo"]),
        ("Technical", ["the website is broken", "form broken", "website form error", "broken website"]))
        for t in texts]
    model = fit(examples, {}, 1, lexicon=lexicon)
    body = "Could you design a banner and a logo for the page? Also please fix the broken website form."
    assert model.predict(RequestText("Two things", body)).mixed == ("Design", "Technical")
    named = model.predict(RequestText("Two things", body, type_word="layout"))
    assert named.guesses[0].type == "Design" and named.mixed == ()


def test_items_of_a_list_that_an_ask_introduces_are_segments() -> None:
    text = RequestText("", "Big year ahead! We need:\n\n- a new version of our logo\n• texts for the anniversary booklet\n"
                           "\nThe board liked last year's work.\n- this dash line is no list item of an ask")
    assert [p.body for p in segments(text)] == ["a new version of our logo", "texts for the anniversary booklet"]


def test_a_type_may_ask_for_more_confidence_than_the_others() -> None:
    prediction = Prediction(3, guesses(("Revision", 0.85), ("Design", 0.1)), 0.0, 20)
    assert decide(prediction, 0.7, 0.2).route_as is not None
    held = decide(prediction, 0.7, 0.2, type_thresholds={"Revision": 0.9})
    assert held.route_as is None and held.reason == "not sure: Revision (0.85) is below the threshold 0.90"
    assert decide(replace(prediction, guesses=guesses(("Design", 0.85), ("Revision", 0.1))), 0.7, 0.2,
                  type_thresholds={"Revision": 0.9}).route_as is not None, "the others keep the threshold"


@pytest.mark.parametrize(("body", "greeted", "also"), [
    ("Hi Dev and Ana,\nTwo things.", "dev", ("ana",)),
    ("Liebe Ana, lieber Ben,\nzum Jubiläum …", "ana", ("ben",)),
    ("Hi Ben, hi Ana,\nthe catalogue …", "ben", ("ana",)),
    ("Hallo Ana und Ben!\nWir …", "ana", ("ben",)),
    ("Hi Ben, Ana asked me to write to you.", "ben", ()),       # a sentence, not a greeting line
    ("Hi Ben, could you make a banner?", "ben", ()),
])
def test_a_greeting_line_may_greet_several_people(body: str, greeted: str, also: tuple[str, ...]) -> None:
    cleaned = clean_body(body)
    assert (cleaned.greeted, cleaned.also_greeted) == (greeted, also)


STAFF_QUEUES = {"ana": ("content",), "ben": ("content", "design"), "dev": ("dev", "revision"), "morgan": ("strategy",)}


@pytest.mark.parametrize(("body", "addressed"), [
    ("Hi Dev and Ana,\nThe stock alerts are not sent, and we need twelve product texts.", ("dev", "ana")),
    ("Hi Ana and Ben,\nCould you write and lay out the anniversary booklet?", ()),   # both work in content
    ("Hi Ben,\nCould you make a banner?", ()),
    ("Hi Ana and Sam,\nCould you write a blog post?", ()),                         # Sam is not staff
    ("Hi team,\n1) The signup form fails in Safari – Dev, can you fix?\n2) Ana, we'd like three new posts.",
     ("dev", "ana")),                                                                 # addressed in passing
    ("Hallo Ana,\nwir brauchen Alt-Texte für 120 Bilder. Das Einpflegen macht Dev, wir brauchen nur die Texte.",
     ()),                                                                             # Dev named, not asked
])
def test_greeting_people_of_no_common_queue_is_a_mixed_request(model: TriageModel, body: str,
                                                               addressed: tuple[str, ...]) -> None:
    prediction = model.predict(RequestText("Two jobs", body, "Acme"), STAFF_QUEUES)
    assert prediction.addressed == addressed
    if addressed:
        verdict = decide(replace(prediction, guesses=guesses(("Content", 0.99), ("Technical", 0.01))), 0.7)
        assert verdict.route_as is None and verdict.reason == "mixed: it is addressed to Dev and Ana, who work in different queues"


def test_a_follow_up_beside_other_work_is_mixed_when_the_mail_says_they_are_separate() -> None:
    prediction = Prediction(3, guesses(("Revision", 0.95), ("Content", 0.03)), 0.0, 20, ("Revision", "Content"),
                            mixed_asking=("Revision", "Content"))
    assert decide(prediction, 0.7, 0.2, follow_ups=("Revision",)).route_as is not None
    separate = decide(replace(prediction, separate=True), 0.7, 0.2, follow_ups=("Revision",))
    assert separate.route_as is None and separate.reason == "mixed: it asks for Revision and Content work"


@pytest.mark.parametrize(("subject", "body", "separate"), [
    ("two things", "Hi Ben, the flyer has a typo.", True),
    ("", "Fix the phone number in the catalogue. And separately, we need the March newsletter.", True),
    ("", "Hallo, zwei Sachen: der Flyer und der Shop.", True),
    ("", "Bonjour, deux choses : le logo et le site.", True),
    ("", "Please change the colours in the banner you sent and make the logo bigger.", False),
])
def test_says_separate(subject: str, body: str, separate: bool) -> None:
    assert says_separate(RequestText(subject, body)) is separate


SIGN_OFF, AWAY = "a sign-off of delivered work", "word that someone is away"


@pytest.mark.parametrize(("body", "what"), [
    ("Looks great, approved! Thanks Ana\n\nJ\n\nOn Mon, 7 Apr 2025 at 14:12, Ana wrote:\n> Updated version attached.", SIGN_OFF),
    ("Perfect, that's approved from our side. Go ahead.", SIGN_OFF),
    ("Passt so, Freigabe erteilt. Danke!", SIGN_OFF),
    ("C'est parfait, validé pour nous. Merci !", SIGN_OFF),
    ("Looks great, approved, but can you change the date to 14 April?", ""),          # a change
    ("Approved, please send it to the printer.", ""),                                  # an ask
    ("Herr Kaya hat den Artikel freigegeben, bis auf zwei Punkte: 350 km (nicht 300).", ""),
    ("Approved except for the headline on page 2.", ""),
    ("Looks great, thanks Ben!", ""),                                                  # praise, no sign-off word
    ("We got the budget approved for the spring campaign. " + "Lots of context here. " * 15, ""),  # long
    ("Hi all,\nI'm on leave from Friday until Monday 14th. Tom covers anything urgent, the poster artwork "
     "can go straight to him for sign-off.\nThanks,\nHannah", AWAY),
    ("Ich bin ab Montag zwei Wochen im Urlaub, Herr Maier vertritt mich.", AWAY),
    ("Je serai absente du 12 au 20 mai.", AWAY),
    ("I'm on holiday next week, could you send the banner drafts to Tom instead?", ""),  # asks while away
])
def test_mail_that_asks_for_no_work(body: str, what: str) -> None:
    assert nothing_asked(RequestText("Re: April newsletter - final", body)) == what


def test_mail_that_asks_for_no_work_stays_in_triage_however_sure_the_model_is() -> None:
    prediction = Prediction(3, guesses(("Revision", 0.99), ("Content", 0.01)), 0.0, 8, nothing_asked=SIGN_OFF)
    verdict = decide(prediction, 0.7)
    assert verdict.route_as is None and verdict.reason == "looks like a sign-off of delivered work, asking for nothing"
    assert verdict.suggestions[0].type == "Revision"


def test_each_paragraph_of_a_mail_with_separate_asks_is_a_segment() -> None:
    body = ("Two things:\n\nFirst, the whitepaper: the team read it and has a list of edits in the doc. Can you work "
            "those in?\n\nSecond, could you interview their IT director and write a new case study?")
    parts = [p.body for p in segments(RequestText("", body))]
    assert "First, the whitepaper: the team read it and has a list of edits in the doc. Can you work those in?" in parts
    one_thing = body.replace("Two things:", "Our news:")
    assert not any(p.startswith("First, the whitepaper") for p in (p.body for p in segments(RequestText("", one_thing))))


def test_someone_for_one_thing_and_someone_for_another_are_two_asks() -> None:
    text = RequestText("", "Wir bräuchten jemanden, der die Texte schreibt, und jemanden, der das Ganze gestaltet.")
    assert [p.body for p in segments(text)] == ["Wir bräuchten jemanden, der die Texte schreibt,",
                                                "und jemanden, der das Ganze gestaltet."]


@pytest.mark.parametrize("sentence", [
    "Dev can upload them once they're ready, nothing else on the page needs to change.",
    "We'll handle the layout in-house, so we need a finished manuscript from you.",
    "La parte técnica la vemos más adelante con Dev, por favor solo los textos.",
    "Die Gestaltung machen wir selbst, bitte nur die Texte liefern.",
])
def test_work_the_client_does_itself_or_later_is_no_ask(sentence: str) -> None:
    assert segments(RequestText("", "Could you design three banners for the sale?\n" + sentence)) == \
        [RequestText("", "Could you design three banners for the sale?")]


def test_both_halves_of_an_ask_for_both_are_segments() -> None:
    text = RequestText("", "We'd need help with both the writing of the chapters and the design and layout of the report.")
    assert [p.body for p in segments(text)] == ["the writing of the chapters", "the design and layout of the report.",
                                                "We'd need help with"]


def test_items_after_an_asks_colon_on_one_line_are_segments() -> None:
    text = RequestText("", "We need help with: the invite email sequence, name badges for the stage and a "
                           "registration form on the site.\nThings have been mad here: a reorg, a move, a new boss.")
    assert [p.body for p in segments(text)] == ["the invite email sequence", "name badges for the stage",
                                                "a registration form on the site.", "We need help with"]


@pytest.mark.parametrize(("body", "parts"), [
    ("It should work as a full page, and also as tiles.", []),                  # tells, asks nothing
    ("Could the team write a press release?", ["Could the team write a press release?"]),
    ("Nous voudrions refaire la page produit, et aussi réécrire les textes.",
     ["Nous voudrions refaire la page produit,", "réécrire les textes."]),
    ("¿Podéis traducir las páginas de servicios?", ["¿Podéis traducir las páginas de servicios?"]),
])
def test_only_sentences_that_ask_are_segments(body: str, parts: list[str]) -> None:
    assert [p.body for p in segments(RequestText("", body))] == parts


def test_a_text_of_few_known_words_is_trusted_less() -> None:
    assert short_text_scale(SHORT_TEXT_WORDS) == pytest.approx(0.5)
    assert short_text_scale(0) == short_text_scale(1) < short_text_scale(3) < short_text_scale(40) < 1.0


def test_three_words_are_less_sure_than_a_paragraph_saying_the_same(model: TriageModel) -> None:
    short = model.predict(RequestText("", "banner please, spring sale"))
    long = model.predict(RequestText("", "Could you design a banner for the spring sale? We need the homepage hero "
                                         "and two sidebar sizes, in the brand colours, with the discount big."))
    assert short.best.type == long.best.type == "Design"
    assert short.best.confidence < long.best.confidence


@pytest.mark.parametrize("subject", ["Re: deck", "AW: Flyer", "Fwd: offer", "RE : brochure", "WG: Angebot"])
def test_a_replys_subject_names_the_thread_and_weighs_as_a_body_word(subject: str) -> None:
    found = tokens(RequestText(subject, "Board loved it, thanks."))
    assert not [t for t in found if t.startswith("s:")]
    assert "w:" + subject.split(":")[1].split()[0].lower() in found
    assert "s:deck" in tokens(RequestText("deck", "Board loved it, thanks."))


@pytest.mark.parametrize(("body", "parts"), [
    ("Could you write up the descriptions for them and get them live in the shop?",
     ["Could you write up the descriptions for them", "and get them live in the shop?"]),
    ("Bräuchten dafür die Gestaltung des Kartons und einen kleinen Text für die Rückseite.",
     ["Bräuchten dafür die Gestaltung des Kartons", "und einen kleinen Text für die Rückseite."]),
    ("Wir wollen für den Shop und den Getränkehandel eine eigene Box, bitte.",
     ["Wir wollen für den Shop und den Getränkehandel eine eigene Box, bitte."]),
    ("Could you design the colours and the font for it?", ["Could you design the colours and the font for it?"]),
])
def test_one_sentence_asking_for_two_pieces_of_work_is_two_segments(body: str, parts: list[str]) -> None:
    assert [p.body for p in segments(RequestText("", body))] == parts
