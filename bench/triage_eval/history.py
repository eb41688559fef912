"""The team's past mail: a deterministic (seeded) run of well-formed requests
(`[Client] - Type - description`) from the evaluation's clients, each with its habits.

    python -m bench.triage_eval.history [--count 400] [--seed 23] [--overlap]

prints one JSON object a line (client, type, from, subject, body, lang). ``--overlap`` instead
reports runs of six words shared with freeform.jsonl, which should be none: the evaluation
measures generalisation, not recall of sentences it was trained on.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.triage_eval.history_phrases import (ASKS, CLOSINGS, COLLEAGUES, CONTEXT, DETAILS, GREETINGS, JOBS, MONTHS,
                                               QUOTES, TYPE_WORDS, WEEKDAYS)

HERE = Path(__file__).resolve().parent
STAFF_FOR = {"Content": ["Ana", "Ben"], "Design": ["Ben"], "Technical": ["Dev"], "Strategy": ["Morgan"],
             "Revision": ["Ana", "Ben", "Dev"], "Urgent": ["Dev", "Morgan"]}
STAFF = ("Ana", "Ben", "Dev", "Morgan")


@dataclass(frozen=True)
class Sender:
    name: str
    address: str
    lang: str
    signature: str = ""


@dataclass(frozen=True)
class Profile:
    """A client's habits: who writes, what they usually order, what their work is about."""

    name: str
    senders: tuple[Sender, ...]
    habits: dict[str, float]  # type -> share of its requests
    nouns: dict[str, dict[str, tuple[str, ...]]]  # lang -> slot -> words
    # Share of its change requests it files under the type of the original work ("Design -
    # tweaks to the poster"): the subject's type is what the team routed, so what the model sees.
    revisions_as_original: float = 0.0


PROFILES = (
    Profile("Acme", (
        Sender("Rachel Kim", "r.kim@acme.com", "en", "Rachel Kim | Content Lead | Acme Corp"),
        Sender("Marco Bellini", "marco.bellini@acme.com", "en", "Marco Bellini\nDigital Manager, Acme Corp"),
        Sender("Bob Kowalski", "bob@gmail.com", "en"),
        Sender("Denise Walker", "dwalker@acme.com", "en", "Denise Walker\nBrand & Creative, Acme Corp\nChicago, IL"),
    ), {"Content": 0.38, "Design": 0.22, "Technical": 0.18, "Revision": 0.12, "Strategy": 0.08, "Urgent": 0.02},
        {"en": {"p": ("the ProBlend range", "the Vortex juicer", "the induction hob", "the commercial mixer",
                      "the warranty plan", "the spare parts shop"),
                "topic": ("meal prep for busy cafés", "cutting energy bills in kitchens", "hygiene routines",
                          "choosing a blender", "baking at scale"),
                "event": ("the dealer summit", "the autumn catalogue launch", "the Dallas showroom opening",
                          "our anniversary week")}}),
    Profile("Globex", (
        Sender("Amelia Hart", "amelia.hart@globex.example", "en", "Amelia Hart\nCommunications Manager\nGlobex Logistics"),
        Sender("Victor Osei", "victor.osei@globex.example", "en", "Victor Osei | IT Applications | Globex"),
        Sender("Katrin Albers", "k.albers@globex.example", "de",
               "Katrin Albers\nUnternehmenskommunikation\nGlobex Logistics GmbH, München"),
        Sender("Stefan Roth", "stefan.roth@globex.example", "de", "Stefan Roth\nIT / Web\nGlobex Logistics GmbH"),
    ), {"Technical": 0.30, "Content": 0.25, "Strategy": 0.16, "Design": 0.14, "Revision": 0.13, "Urgent": 0.02},
        {"en": {"p": ("the cold-chain service", "the Antwerp depot", "same-day courier", "the shipper portal",
                      "customs clearance", "the electric vans"),
                "topic": ("last-mile delivery", "warehouse automation", "peak season planning", "green freight"),
                "event": ("the logistics fair", "the Antwerp depot opening", "the supplier awards",
                          "the tender round")},
         "de": {"p": ("die Kühlkette", "das Depot Antwerpen", "den Kurierdienst", "das Versenderportal",
                      "die Zollabfertigung", "die E-Transporter"),
                "topic": ("die letzte Meile", "Lagerautomatisierung", "die Spitzensaison", "grüne Logistik"),
                "event": ("die Logistikmesse", "die Eröffnung in Antwerpen", "die Lieferantenehrung",
                          "die Ausschreibungsrunde")}}),
    Profile("Tyler", (
        Sender("Sam Whitfield", "sam@tyler-outdoor.co.uk", "en", "Sam Whitfield\nShop Manager, Tyler Outdoor"),
        Sender("Priti Lal", "priti.lal@tyler-outdoor.co.uk", "en", "Priti | Online, Tyler Outdoor"),
        Sender("Emma Tyler", "emma@tyler-outdoor.co.uk", "en", "Emma Tyler\nFounder, Tyler Outdoor"),
    ), {"Design": 0.32, "Technical": 0.25, "Content": 0.20, "Revision": 0.13, "Strategy": 0.08, "Urgent": 0.02},
        {"en": {"p": ("the trekking poles", "the new tents", "our hire scheme", "the fleece range",
                      "the gift cards", "the kids' waterproofs"),
                "topic": ("layering in winter", "caring for down jackets", "scrambling for beginners",
                          "packing light"),
                "event": ("the spring open day", "the fell race", "the stocktake sale", "the repair café")}},
        revisions_as_original=0.4),
    Profile("Kessler", (
        Sender("Anna Schuster", "a.schuster@brauerei-kessler.de", "de",
               "Anna Schuster\nMarketing\nPrivatbrauerei Kessler"),
        Sender("Florian Beck", "f.beck@brauerei-kessler.de", "de", "Florian Beck | Vertrieb Gastronomie"),
        Sender("Thomas Kessler", "t.kessler@brauerei-kessler.de", "de", "Thomas Kessler\nGeschäftsführer"),
    ), {"Design": 0.36, "Content": 0.25, "Revision": 0.19, "Technical": 0.10, "Strategy": 0.08, "Urgent": 0.02},
        {"de": {"p": ("das Märzen", "den Doppelbock", "das Zwickl", "die Brotzeitplatte", "den Hofladen",
                      "das Kellerfest-Bier"),
                "topic": ("Bierstile aus Franken", "Hopfenernte", "Bier und Käse", "Brautradition"),
                "event": ("das Kellerfest", "den Tag der offenen Tür", "die Sommerkirchweih",
                          "das Starkbierfest")}}),
    Profile("Lune", (
        Sender("Juliette Roux", "juliette.roux@maisonlune.fr", "en", "Juliette Roux\nBrand Manager, Maison Lune"),
        Sender("Hugo Martin", "hugo@maisonlune.fr", "en", "Hugo Martin — E-commerce, Maison Lune"),
    ), {"Content": 0.35, "Design": 0.30, "Technical": 0.15, "Revision": 0.12, "Strategy": 0.08},
        {"en": {"p": ("the hand balm", "the cleansing oil", "the refill pouches", "the lip treatment",
                      "the Marais boutique"),
                "topic": ("skin in winter", "refillable beauty", "night-time rituals", "sensitive skin"),
                "event": ("the pop-up in Lyon", "the Marais boutique relaunch", "the summer edit")}}),
)
WEIGHTS = {"Acme": 0.28, "Globex": 0.30, "Tyler": 0.16, "Kessler": 0.16, "Lune": 0.10}


@dataclass(frozen=True)
class PastRequest:
    client: str
    type: str
    sender: str  # "Name <address>"
    subject: str
    body: str
    lang: str


def generate(count: int = 400, seed: int = 23) -> list[PastRequest]:
    """``count`` well-formed requests; the same ``seed`` gives the same mail, with no two bodies alike."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[PastRequest] = []
    while len(out) < count:
        request = _one(rng)
        key = re.sub(r"[\d\W]+", " ", request.body.lower())
        if key not in seen:
            seen.add(key)
            out.append(request)
    return out


def _one(rng: random.Random) -> PastRequest:
    profile = rng.choices(PROFILES, [WEIGHTS[p.name] for p in PROFILES])[0]
    kind = rng.choices(list(profile.habits), list(profile.habits.values()))[0]
    sender = rng.choice(profile.senders)
    lang = sender.lang
    nouns = profile.nouns[lang]
    slots = {slot: rng.choice(words) for slot, words in nouns.items()}
    day = rng.randint(4, 28)
    slots |= {"month": rng.choice(MONTHS[lang]), "n": str(rng.randint(2, 9)),
              "day": f"{day}{'th' if 11 <= day <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"}
    described, job = (text.format(**slots) for text in rng.choice(JOBS[lang][kind]))
    # Half greet whoever does this kind of work, some their usual contact whatever the work, the rest nobody.
    greets = rng.random()
    staff = rng.choice(STAFF_FOR[kind]) if greets < 0.5 else rng.choice(STAFF) if greets < 0.62 else ""
    greeting = rng.choice([g for g in GREETINGS[lang] if ("{staff}" in g) == bool(staff)] or [""])
    details = rng.sample(DETAILS[lang][kind], k=min(len(DETAILS[lang][kind]), rng.choice((0, 1, 1, 2, 2, 3))))
    slots |= {"weekday": rng.choice(WEEKDAYS[lang]), "colleague": rng.choice(COLLEAGUES)}
    sentences = [rng.choice(ASKS[lang]).format(job=job)] + [d.format(**slots) for d in details]
    if rng.random() < 0.6:
        context = rng.choice(CONTEXT[lang]).format(**slots)
        sentences.insert(0 if rng.random() < 0.7 else len(sentences), context)
    closing = rng.choice(CLOSINGS[lang])
    first_name = sender.name.split()[0]
    parts = [greeting.format(staff=staff), " ".join(sentences), "\n".join(filter(None, (closing, first_name)))]
    if sender.signature and rng.random() < 0.5:
        parts.append(sender.signature)
    if rng.random() < 0.2:  # an earlier exchange below, about any work of theirs
        earlier = rng.choice(JOBS[lang][rng.choice(list(profile.habits))])[0].format(**slots)
        writer = rng.choice(STAFF)
        parts.append(rng.choice(QUOTES[lang]).format(staff=writer, staff_lower=writer.lower(), first=first_name,
                                                      title=earlier, weekday=slots["weekday"]))
    body = "\n\n".join(p for p in parts if p)
    if rng.random() < 0.08:
        body = ""  # the subject says it all
    if kind == "Revision" and rng.random() < profile.revisions_as_original:
        kind = rng.choice(("Design", "Content", "Technical"))
    word = rng.choice(TYPE_WORDS[kind])
    label = profile.name if rng.random() < 0.9 else profile.name.upper()
    return PastRequest(profile.name, kind, f"{sender.name} <{sender.address}>",
                       f"[{label}] - {word} - {described[0].upper()}{described[1:]}", body, lang)


def overlap(history: list[PastRequest], freeform_path: Path = HERE / "freeform.jsonl", size: int = 6) -> set[str]:
    """Runs of ``size`` words found both in the history and in the free-form set."""
    def grams(text: str) -> set[str]:
        words = re.findall(r"\w+", text.lower())
        return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}
    theirs: set[str] = set()
    for line in freeform_path.read_text().splitlines():
        item = json.loads(line)
        theirs |= grams(f"{item['subject']}\n{item.get('body') or item.get('html', '')}")
    ours: set[str] = set()
    for request in history:
        ours |= grams(f"{request.subject}\n{request.body}")
    return ours & theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--overlap", action="store_true", help="report six-word runs shared with freeform.jsonl")
    args = parser.parse_args()
    history = generate(args.count, args.seed)
    if args.overlap:
        shared = sorted(overlap(history))
        print(f"{len(shared)} six-word runs shared with freeform.jsonl")
        for gram in shared:
            print(f"  {gram}")
        return
    for request in history:
        print(json.dumps(asdict(request), ensure_ascii=False))


if __name__ == "__main__":
    main()
