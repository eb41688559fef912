"""What a client means in plain words, in English, German, French and Spanish.

Clients do not learn a command language: they write "Approved, thanks!", "Passt so, danke",
"Approuvé, merci", "Cancel this request please, we no longer need it". ``read_intent`` sorts a
client's reply (quotes, greeting and signature already gone) into approve / revise / cancel /
status, and says whether it is certain. Certain means the reply says only that (plus thanks,
praise and politeness); anything more, or praise without an explicit approval ("Looks great!"),
is uncertain and is asked back, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dispatchd.domain.phrases import GREETING_LINE, GREETING_PREFIX, normalise

_APPROVE = (
    r"approved?|approval|confirm(?:ed)?|accept(?:ed)?|lgtm|sign(?:ed)? off|good to go|all good|ship it|"
    r"go ahead|looks good to me|ok to publish|(?:please )?(?:publish|proceed)|go live|send it out|"
    r"(?:we are|we're|i am|i'm|very|really) (?:happy|satisfied|pleased) with (?:it|this|that|the result)|"
    r"(?:gebe|geben) (?:es |das |ihn |sie )?(?:so )?frei|freigeben|ver[öo]ffentlichen|zufrieden|"
    r"publiez|publier|satisfaits?|publicar|publiquen|contentos|"
    r"freigegeben|freigabe|genehmigt|best[äa]tigt|akzeptiert|einverstanden|passt(?: so| alles| perfekt)?|"
    r"alles (?:gut|klar|bestens)|ist gut so|in ordnung|abgenommen|"
    r"approuv[ée]e?s?|valid[ée]e?s?|je valide|nous validons|on valide|confirm[ée]e?s?|accept[ée]e?s?|c'est bon|"
    r"[çc]a me va|ok pour (?:moi|nous)|bon pour (?:moi|nous|accord)|d'accord|"
    r"aprobad[oa]s?|apruebo|confirmad[oa]s?|aceptad[oa]s?|de acuerdo|est[áa] bien|todo bien|vale|"
    r"ok para m[íi]|visto bueno|[👍✅]")
_PRAISE = (
    r"looks? (?:great|good|fine|perfect|amazing|fantastic|excellent|lovely|brilliant)|great(?: job| work)?|"
    r"perfect|love it|loving it|excellent|awesome|amazing|nice|wonderful|fantastic|brilliant|well done|"
    r"lovely|spot on|exactly what we (?:need|needed|wanted)|"
    r"sieht (?:gut|super|toll|klasse|perfekt) aus|super|toll|prima|klasse|perfekt|wunderbar|sehr gut|gut|"
    r"gefällt (?:mir|uns)|sch[öo]n|"
    r"parfait|g[ée]nial|excellent|tr[èe]s bien|bravo|top|impeccable|magnifique|"
    r"perfecto|genial|excelente|muy bien|estupendo|me encanta|nos encanta|buen trabajo")
_POLITE = (
    r"thanks?|thank you(?: (?:so|very) much)?|many thanks|thanks (?:a lot|so much|again)|cheers|ty|thx|"
    r"danke(?: sch[öo]n| sehr)?|vielen dank|besten dank|merci(?: beaucoup)?|gracias|muchas gracias|"
    r"please|bitte|s'il vous pla[îi]t|por favor|"
    r"hi|hello|team|all|everyone|guys|folks|again|too|as well|so much|very much|a lot|"
    r"from (?:our|my) side|on (?:our|my) side|from (?:our|my) end|for (?:us|me)|on our end|"
    r"von unserer seite|von meiner seite|de notre c[ôo]t[ée]|por nuestra parte|"
    r"the|this|it|that|is|are|all|so|very|really|we|i|us|you|your|work|job|draft|version|final|"
    r"das|ist|es|so|wir|ich|alles|sehr|c'est|tout|est|nous|je|c|es|todo|está|muy|para|nosotros|"
    r"and|und|et|y|now|jetzt|maintenant|ahora|ok|okay|:\)|:-\)|yes|ja|oui|s[ií]|with thanks|"
    r"sind|are|am|sommes|somos|estamos|with this|on this|about this|de esto|esto|on our side")
_REVISE = (
    r"revise|revision|changes?\s*:|please change|could you (?:change|make|adjust|fix|update)|"
    r"can you (?:change|make|adjust|fix|update)|change|modify|adjust|fix|tweak|shorten|lengthen|but|however|"
    r"except|instead|"
    r"[äa]ndern|[äa]nderung(?:en)?|korrektur(?:en)?|korrigieren|anpassen|[üu]berarbeiten|bitte noch|aber|"
    r"jedoch|statt|"
    r"modifier|modifications?|changer|corriger|corrections?|revoir|mais|sauf|au lieu|"
    r"cambiar|cambios?|modificar|corregir|correcciones|revisar|pero|excepto|en vez")
_CANCEL = (
    r"cancel(?:l?ed|led)?|cancel(?:l)?ation|please cancel|no longer need(?:ed)?|don't need (?:it|this) anymore|"
    r"do not need (?:it|this) anymore|withdraw|call it off|"
    r"stornieren|storniert|storno|abbrechen|abgesagt|absagen|brauchen (?:wir|es) (?:das )?nicht mehr|"
    r"nicht mehr (?:n[öo]tig|ben[öo]tigt)|zur[üu]ckziehen|"
    r"annuler|annulez|annulation|annul[ée]e?|plus besoin|"
    r"cancelar|cancelen|cancelad[oa]|cancelaci[óo]n|anular|ya no (?:lo |la )?necesitamos")
_STATUS = (
    r"status|any update|any news|how is it going|where are we|when will it be ready|eta|"
    r"wie ist der stand|stand|gibt es neuigkeiten|wann ist es fertig|"
    r"o[ùu] en est(?:-on| on)?|des nouvelles|quand sera(?:-t-il| t il)? pr[êe]t|quand sera|"
    r"c[óo]mo va|alguna novedad|cu[áa]ndo estar[áa](?: listo)?")

# "Changes: …", "Korrektur: …", "Modifications : …", "Cambios: …": a labelled list of changes.
_REVISION_LABEL = re.compile(
    r"^(?:revisions?|changes|change requests?|corrections?|feedback|edits|"
    r"[äa]nderungen|[äa]nderungsw[üu]nsche|korrekturen|korrektur|anmerkungen|"
    r"modifications?|corrections?|[àa] modifier|retours|"
    r"cambios|correcciones|modificaciones)\s*:\s*\S", re.IGNORECASE)
_NEGATION = r"not|no|don't|doesn't|isn't|nicht|kein|keine|pas|ne|n'|no es|nada"
_KEEP_IT = r"(?:don't|do not|not|nicht|pas|no)\s+(?:\w+\s+)?(?:cancel|stornieren|annuler|cancelar|anular)"
_CLAUSES = re.compile(r"[.!?,;\n:]+|\s-\s|\s+(?=(?:but|aber|mais|pero|however|jedoch)\b)", re.IGNORECASE)
_MAX_WORDS = 60  # a longer message is a letter, not an approval


@dataclass(frozen=True)
class Intent:
    """``kind``: approve | revise | cancel | status; ``certain``: act on it without asking."""

    kind: str
    certain: bool


def read_intent(text: str) -> Intent | None:
    """The client's intent in ``text``, or None when it is simply a message."""
    lines = [line for line in text.split("\n") if line.strip() and not GREETING_LINE.match(normalise(line))]
    body = GREETING_PREFIX.sub("", normalise(" \n".join(lines))).lower()
    body = " ".join(normalise(line) for line in body.split("\n")).replace("¿", " ").replace("¡", " ")
    if not body:
        return None
    words = len(body.split())
    if _REVISION_LABEL.match(body):
        return Intent("revise", certain=True)
    if _has(_KEEP_IT, body):
        return None  # "please don't cancel it": a message, not a request
    if _has(_CANCEL, body):
        return Intent("cancel", certain=words <= 25 and not _has(_APPROVE, body))
    clauses = [c.strip() for c in _CLAUSES.split(body) if c and c.strip()]
    kinds = [_clause_kind(clause) for clause in clauses]
    if words > _MAX_WORDS:
        return None
    if "revise" in kinds:
        return Intent("revise", certain=False)
    if "approve" in kinds:
        return Intent("approve", certain=all(k in ("approve", "praise", "polite") for k in kinds))
    if kinds and all(k in ("praise", "polite") for k in kinds) and "praise" in kinds:
        return Intent("approve", certain=False)
    if "status" in kinds and all(k in ("status", "polite") for k in kinds):
        return Intent("status", certain=True)
    return None


def _clause_kind(clause: str) -> str:
    """approve | praise | polite | revise | status | other, for one clause."""
    if _has(_REVISE, clause) or (_has(_NEGATION, clause) and (_has(_APPROVE, clause) or _has(_PRAISE, clause))):
        return "revise"  # "not approved", "doesn't look good": something must change
    for kind, pattern in (("approve", _APPROVE), ("praise", _PRAISE), ("status", _STATUS)):
        rest = _remove(pattern, clause)
        if rest != clause and not _remove(_POLITE, rest).strip(" '\"-"):
            return kind
        if rest != clause and kind == "approve" and not _remove(_PRAISE, _remove(_POLITE, rest)).strip(" '\"-"):
            return kind
    rest = _remove(_POLITE, _remove(_PRAISE, clause))
    if rest != _remove(_POLITE, clause) and len(rest.split()) <= 2 and not _has(_NEGATION, clause):
        return "praise"  # "the changes look good": praise of something named
    return "polite" if not _remove(_POLITE, clause).strip(" '\"-") else "other"


def _has(pattern: str, text: str, whole_word: bool = True) -> bool:
    return re.search(rf"(?<![\w'])(?:{pattern})(?![\w'])", text) is not None


def _remove(pattern: str, text: str) -> str:
    return re.sub(rf"(?<![\w'])(?:{pattern})(?![\w'])", " ", text).strip()
