"""The rules' examples written out as emails, for training on day one.

A real request is a sentence or two inside a greeting, small talk and a signature. Training on
the bare example sentences only, the model gave the words every email has (a deadline, "let me
know", "budget as usual") whatever weight chance gave them; written out with the same small
talk for every type, those words are learnt to point nowhere, and the confidence it learns is
that of a whole email. Deterministic: the n-th example always gets the same wrapping.
"""

from __future__ import annotations

from dispatchd.domain.triage_text import RequestText

SUBJECTS = ("Quick request", "Request", "Hi", "Question", "Small thing", "For you", "Next step", "Anfrage",
            "Kurze Frage", "Bitte", "Neues Thema", "Follow-up", "", "Idea", "Wichtig", "Project")
GREETINGS = ("Hi team,", "Hello,", "Hi there,", "Dear all,", "Hallo zusammen,", "Hallo,", "Guten Morgen,", "Hey,",
             "Good morning,", "Liebes Team,", "", "Hi,")
SMALL_TALK = (
    "Hope you are well.", "Hope you had a good weekend.", "As discussed last week.", "Following up on our chat.",
    "It would be great to have it by Friday.", "No rush, end of the month is fine.", "Budget as usual.",
    "Let me know if you need anything else.", "Happy to jump on a call if that helps.", "Thanks in advance!",
    "We are launching in March.", "Our CEO asked me to send this over.", "I'll send the files separately.",
    "Ich hoffe, es geht euch gut.", "Wie besprochen.", "Bis Ende nächster Woche wäre super.", "Danke vorab!",
    "Meldet euch bei Fragen.", "Die Unterlagen schicke ich separat.", "Unser Chef hat darum gebeten.",
    "Budget wie immer.", "Kein Stress, Ende des Monats reicht.", "",
)
SIGN_OFFS = ("Thanks,\nJo", "Best regards,\nSam Miller\nHead of Marketing\n+44 20 7946 0000", "Cheers,\nAlex",
             "Viele Grüße\nJana Becker", "LG Tom", "Mit freundlichen Grüßen\nDr. Petra Schmidt\nGeschäftsführung",
             "Kind regards\nChris", "Danke!\nMaria", "Best,\nLee")


def as_email(text: str, n: int) -> RequestText:
    """Example ``text`` inside the n-th combination of subject, greeting, small talk and sign-off."""
    def pick(options: tuple[str, ...], salt: int) -> str:
        return options[(n * 7 + salt * 3 + len(text)) % len(options)]

    body = "\n".join(line for line in (pick(GREETINGS, 1), pick(SMALL_TALK, 2), text, pick(SMALL_TALK, 5), "",
                                       pick(SIGN_OFFS, 3)) if line is not None)
    return RequestText(subject=pick(SUBJECTS, 4), body=body)


def vague_subject(n: int) -> str:
    return SUBJECTS[n % len(SUBJECTS)]
