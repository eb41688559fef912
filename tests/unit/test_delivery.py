"""Staff's words and files for the client: the grammar of 'reply:' and 'deliver:', and the size rule."""

import pytest

from dispatchd.domain.commands import parse_reply, with_message_folded
from dispatchd.domain.delivery import deliverable_files, files_refusal
from dispatchd.domain.models import MailAttachment


@pytest.mark.parametrize("text, commands, note", [
    ("reply: Hi Bob,\nthe draft is attached.\n\nstart\nBest", [("reply", "Hi Bob,\nthe draft is attached.\n\nstart\nBest")], ""),
    ("reply:\nHi Bob,\nhere it is", [("reply", "Hi Bob,\nhere it is")], ""),
    ("Reply to client: done by Friday", [("reply", "done by Friday")], ""),
    ("assign Ana\nreply: Ana will take it from here", [("assign", "Ana"), ("reply", "Ana will take it from here")], ""),
    ("Reply from the client was positive", [], "Reply from the client was positive"),   # prose: no colon
    ("deliver", [("deliver", "")], ""),
    ("approve\ndeliver\n\nInternal: checked twice", [("approve", ""), ("deliver", "")], "Internal: checked twice"),
    ("deliver: Final files at https://x.test/f\nEnjoy", [("deliver", "Final files at https://x.test/f\nEnjoy")], ""),
])
def test_words_for_the_client(text: str, commands: list[tuple[str, str]], note: str) -> None:
    parsed = with_message_folded(parse_reply(text, names=frozenset({"ana"})))
    assert [(c.name, c.argument) for c in parsed.commands] == commands
    assert parsed.note == note


def files(*sizes: int) -> tuple[MailAttachment, ...]:
    return tuple(MailAttachment(f"f{n}.pdf", "application/pdf", b"x" * size) for n, size in enumerate(sizes))


@pytest.mark.parametrize("sizes, kept, too_large, refused", [
    ((), 0, (), None),
    ((400, 500), 2, (), None),
    ((1000,), 1, (), None),                                   # exactly the limit
    ((1001,), 0, ("f0.pdf",), "f0.pdf: over the 0.00 MB an email may carry here; put it on a shared drive and send "
                              "the link instead"),
    ((600, 600), 2, (), "the files come to 0.0 MB together, over the 0.00 MB an email may carry here; send some as "
                        "a link instead"),
])
def test_files_for_one_email(sizes: tuple[int, ...], kept: int, too_large: tuple[str, ...],
                             refused: str | None) -> None:
    got, over = deliverable_files(files(*sizes), 1000)
    assert (len(got), over) == (kept, too_large)
    assert files_refusal(got, over, 1000) == refused
