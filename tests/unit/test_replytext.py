"""What counts as the sender's own words: quotes, attribution lines, header blocks, signatures."""

import pytest

from dispatchd.domain.replytext import split_reply

GMAIL = "On Thu, 26 Nov 2026 at 10:00, Agency <requests@agency.test> wrote:"


@pytest.mark.parametrize("text, body", [
    ("> approve", ""),                                                      # an accidental send
    (">\n> Ben\n> approve", ""),
    ("  > start", ""),
    (f"Thanks, tomorrow.\n\n{GMAIL}\n> start\n> approve", "Thanks, tomorrow."),
    (f"start\n\nOn Thu, 26 Nov 2026 at 10:00, Agency <\nrequests@agency.test> wrote:\n> close", "start"),
    (f"{GMAIL}\n> start\n> approve\n\nreview\n\nCheers, Ana", "review"),     # bottom-posting
    ("> Can you start?\nyes, starting now\n> And review?\nlater", "yes, starting now\nlater"),  # interleaved
    ("ok\n\nAm Do., 26. Nov. 2026 um 10:00 Uhr schrieb Agency <r@a.test>:\n> start", "ok"),
    ("Vale\n\nEl jue, 26 nov 2026 a las 10:00, Agency (<r@a.test>) escribió:\n> close", "Vale"),
    ("Ok\n\nLe jeu. 26 nov. 2026 à 10:00, Agency <r@a.test> a écrit :\n> start", "Ok"),
    ("Approve\n\nFrom: Agency <r@a.test>\nSent: Thursday\nTo: Ben\nSubject: x\n\nreview", "Approve"),
    ("start\n\nVon: Agency <r@a.test>\nGesendet: Donnerstag\nAn: Ben\nBetreff: x\n\nclose", "start"),
    ("Approuvé\n\nDe : Agency <r@a.test>\nEnvoyé : jeudi\nÀ : Bob\nObjet : x\n\nclose", "Approuvé"),
    ("ok\n\n________________________________\nFrom: A\nSent: B\n\nclose", "ok"),
    ("ok\n-----Original Message-----\nclose", "ok"),
    ("ok\n-----Ursprüngliche Nachricht-----\nclose", "ok"),
    ("start\n\nOp do 3 dec. 2026 om 10:00 schreef Test Agency <r@a.test>:\n> close", "start"),
    ("start\n\nIl giorno gio 3 dic 2026 alle ore 10:00 Test Agency <r@a.test> ha scritto:\n> close", "start"),
    ("start\n\nW dniu 3.12.2026 o 10:00, Test Agency pisze:\n> close", "start"),
    ("start\n\n---- On Thu, 03 Dec 2026 10:00:00 +0100 Test Agency <r@a.test> wrote ----\n\nclose", "start"),
    ("CAUTION: This email originated from outside of the organization.\n\nStart", "Start"),
    ("[EXTERNAL] \nApprove", "Approve"),
])
def test_quoted_text_is_never_part_of_the_reply(text: str, body: str) -> None:
    assert split_reply(text).body == body


@pytest.mark.parametrize("text, body", [
    ("approve\n\nSent from my iPhone", "approve"),
    ("approve\n\nVon meinem iPhone gesendet", "approve"),
    ("approve\n-- \nBen\nLead\nclose", "approve"),
    ("Approved\n\nBest regards,\nBob Stone\nAcme Ltd", "Approved"),
    ("Passt so.\n\nViele Grüße\nJonas", "Passt so."),
    ("Approuvé.\n\nCordialement,\nMarie Dupont", "Approuvé."),
    ("Aprobado.\n\nSaludos,\nLucía", "Aprobado."),
    ("Approve\n\nClient Services | Acme | +44 20 7946 0958", "Approve"),
    ("start\n\nAna Weber\nSenior Copywriter\nT: +49 30 1234567\nana@agency.test", "start"),
    ("Hi Ben,\nApproved.\nThanks", "Hi Ben,\nApproved."),
    ("start\n\nCheers, Ana", "start"),
    ("Approve\nBen Miller\nTeam Lead | Agency GmbH\n+49 30 1234 5678", "Approve"),
    ("start\nAna Weber\nana@agency.test", "start"),
    ("Start\n\nAna", "Start"),
    ("please review\n\nBen M.", "please review"),
    ("Approved.\n\n- JW", "Approved."),
])
def test_signatures_are_split_off(text: str, body: str) -> None:
    reply = split_reply(text)
    assert reply.body == body and reply.signature


@pytest.mark.parametrize("text", [
    "Thanks, I will look tomorrow.",
    "Please call me on +44 20 7946 0958 about the intro, it needs a rethink before we go on.",
    "Thanks, perfect!",
    "Confirm\n\nThanks, perfect!",
    "- one\n- two",
    "start\nnote: call Ana Weber on +49 30 1234 5678",
    "Please ask Ben Miller\nabout the banner",
    "Ana",
    "start\n\nUrgent: the client calls at 3.",
])
def test_prose_is_kept_whole(text: str) -> None:
    assert split_reply(text).body == text
